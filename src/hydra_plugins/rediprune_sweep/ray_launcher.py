"""``hydra/launcher: rediprune_ray`` — a batch of Hydra jobs on a pool of resident Ray workers.

The sweepers of this package also use :attr:`RayPoolLauncher.driver` directly: the grid sweeper to
write the sweep's reports, the Optuna sweeper to start a new trial as soon as any worker is free
(Hydra's ``launch(batch)`` would wait for a whole batch).
"""
from typing import Any, List, Optional, Sequence

from hydra.core.utils import JobReturn, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class RayPoolLauncher(Launcher):
    def __init__(self) -> None:
        self.driver: Any = None
        self.config: Optional[DictConfig] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from rediprune.sweep.driver import SweepDriver

        setup_globals()
        self.config = config
        self.driver = SweepDriver(hydra_context, task_function, config)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        jobs = [self.driver.prepare(list(o), initial_job_idx + i) for i, o in enumerate(job_overrides)]
        returns: List[JobReturn] = self.driver.run_jobs(jobs)
        return returns


def pool_driver(launcher: Any, sweeper: str) -> Any:
    """The sweep driver of ``launcher``, which the sweepers of this package drive directly."""
    driver = getattr(launcher, "driver", None)
    if driver is None:
        raise ValueError(f"hydra/sweeper={sweeper} needs hydra/launcher=rediprune_ray (conf/launch/*.yaml)")
    return driver
