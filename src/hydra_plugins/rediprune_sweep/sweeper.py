"""``hydra/sweeper: rediprune`` — a grid or an Optuna search whose trials run on resident Ray workers.

Hydra's Sweeper contract: ``setup`` gets the master config, ``sweep`` the command's overrides. This
sweeper also launches (it runs the trials itself through ``rediprune.sweep.driver``), so no launcher is
involved. ``search.kind`` picks the loop: ``grid`` (``rediprune.sweep.grid``) or ``pareto``
(``rediprune.sweep.search``). Every path ends in the driver's ``finish``: reports, the W&B sweep run,
the summary; exit status 1 if a trial failed, 2 for a bad value before anything ran, 130 on Ctrl-C.
"""
from typing import Any, Dict, List, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class RediPruneSweeper(Sweeper):
    def __init__(self, params: Optional[Dict[str, str]] = None) -> None:
        self.params = dict(params or {})
        self.driver: Any = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.utils import setup_globals

        from rediprune.sweep.driver import SweepDriver

        setup_globals()  # Hydra's resolvers (${now:…}) for the job configs composed here
        self.hydra_context = hydra_context
        self.driver = SweepDriver(hydra_context, task_function, config)  # checks the sweep's settings

    def sweep(self, arguments: List[str]) -> Any:
        from rediprune.sweep.grid import run_grid
        from rediprune.sweep.search import optimise

        assert self.driver is not None and self.hydra_context is not None
        driver = self.driver
        arguments = [f"{key}={value}" for key, value in self.params.items()] + list(arguments)
        if str(getattr(driver.run.search.kind, "value", driver.run.search.kind)) == "pareto":
            with driver.stopping_on_error():
                result = optimise(driver, arguments, self.hydra_context.config_loader)
            code = result.exit_code
        else:
            with driver.stopping_on_error():
                result = run_grid(driver, arguments)
            code = driver.finish()
        if code:
            raise SystemExit(code)
        return result
