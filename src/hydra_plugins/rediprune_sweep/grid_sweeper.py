"""``hydra/sweeper: rediprune_grid`` — Hydra's grid (``a=1,2 b=x,y``) run as one sweep on the Ray pool.

Like Hydra's BasicSweeper it expands the cartesian product of the command's value lists; unlike it, a
failed trial does not stop the sweep: every trial runs, the reports and summary are written, and the
exit status is 1 if any trial failed (2 if a config value is invalid, before anything runs).
"""
from pathlib import Path
from typing import Any, List

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser


class GridSweeper(BasicSweeper):
    def sweep(self, arguments: List[str]) -> Any:
        from rediprune.sweep.dispatch import WorkersUnavailable
        from rediprune.sweep.driver import config_error

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        driver = getattr(self.launcher, "driver", None)
        if driver is None:
            raise ValueError("hydra/sweeper=rediprune_grid needs hydra/launcher=rediprune_ray (conf/launch/*.yaml)")
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(self._parse_config() + list(arguments))
        batches = self.split_arguments(overrides, self.max_batch_size)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        returns = []
        try:
            # Check every job's config before the first one is dispatched.
            jobs = []
            num = 0
            for batch in batches:
                for job_overrides in batch:
                    jobs.append(driver.prepare(list(job_overrides), num))
                    num += 1
            driver.start_progress(len(jobs))
            returns.append(driver.run_jobs(jobs))
        except WorkersUnavailable as exc:  # nothing could run: say why, exit 2
            driver.abort()
            config_error(str(exc))
        except BaseException:
            driver.abort()
            raise
        code = driver.finish()
        if code:
            raise SystemExit(code)
        return returns
