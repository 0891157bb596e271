"""``hydra/sweeper: rediprune_grid`` — Hydra's grid (``a=1,2 b=x,y``) run as one sweep on the Ray pool.

Like Hydra's BasicSweeper it expands the cartesian product of the command's value lists; unlike it, a
failed trial does not stop the sweep: every trial runs, the reports and summary are written, and the
exit status is 1 if any trial failed (2 if a config value is invalid, before anything runs).
"""
from typing import Any, List

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser


class GridSweeper(BasicSweeper):
    def sweep(self, arguments: List[str]) -> Any:
        from hydra_plugins.rediprune_sweep.ray_launcher import pool_driver

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        driver = pool_driver(self.launcher, "rediprune_grid")
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(self._parse_config() + list(arguments))
        # One batch: the pool hands each free worker the next trial, so Hydra's batching would only add waits.
        (grid,) = self.split_arguments(overrides, None)
        with driver.stopping_on_error():
            # Check every job's config before the first one is dispatched.
            jobs = [driver.prepare(list(job_overrides), num) for num, job_overrides in enumerate(grid)]
            from rediprune.sweep.inert import inert_notes

            for line in inert_notes([{**job.describe, "prefilter": job.config.pruner.prefilter} for job in jobs]):
                print(line, flush=True)  # a swept hyperparameter that has no effect under these settings
            returns = [driver.run_jobs(jobs)]
        code = driver.finish()
        if code:
            raise SystemExit(code)
        return returns
