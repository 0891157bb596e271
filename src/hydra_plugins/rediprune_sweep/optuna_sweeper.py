"""``hydra/sweeper: rediprune_optuna`` — a multi-objective Optuna search (ask/tell) on the Ray pool.

Selected by ``search=pareto``; all settings (sampler, n_trials, storage, space) are in the root
config's ``search`` group. The search loop is :func:`rediprune.sweep.search.optimise`.
"""
from typing import Any, List, Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OptunaSweeper(Sweeper):
    def __init__(self) -> None:
        self.config: Optional[DictConfig] = None
        self.launcher: Any = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: List[str]) -> Any:
        from hydra_plugins.rediprune_sweep.ray_launcher import pool_driver
        from rediprune.sweep.search import optimise

        driver = pool_driver(self.launcher, "rediprune_optuna")
        assert self.hydra_context is not None
        with driver.stopping_on_error():
            result = optimise(driver, list(arguments), self.hydra_context.config_loader)
        if result.exit_code:
            raise SystemExit(result.exit_code)
        return result
