"""``hydra/sweeper: rediprune_grid`` — Hydra's grid (``a=1,2 b=x,y``) run as one sweep on the Ray pool.

Like Hydra's BasicSweeper it expands the cartesian product of the command's value lists; unlike it, a
failed trial does not stop the sweep: every trial runs, the reports and summary are written, and the
exit status is 1 if any trial failed (2 if a config value is invalid, before anything runs).
"""
from typing import Any, List

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser


def unique_values(parser: OverridesParser, overrides: List[Any]) -> List[Any]:
    """Each list override with every value once (``ratio=0.05,0.05`` or ``ratio=0.1,0.10``), with a note."""
    import sys

    from rediprune.sweep.naming import canonical_value

    out = []
    for override in overrides:
        if override.is_sweep_override() and not override.is_interval_sweep():
            strings = list(override.sweep_string_iterator())
            seen: dict = {}
            for text, value in zip(strings, override.sweep_iterator()):
                seen.setdefault(canonical_value(value), text)
            if len(seen) < len(strings):
                keep = list(seen.values())
                head = override.input_line.split("=", 1)[0]
                print(f"note: {override.input_line} lists a value more than once; each runs once: "
                      f"{head}={','.join(keep)}", file=sys.stderr, flush=True)
                override = parser.parse_overrides([f"{head}={','.join(keep)}"])[0]
        out.append(override)
    return out


class GridSweeper(BasicSweeper):
    def sweep(self, arguments: List[str]) -> Any:
        from hydra_plugins.rediprune_sweep.ray_launcher import pool_driver

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        driver = pool_driver(self.launcher, "rediprune_grid")
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = unique_values(parser, parser.parse_overrides(self._parse_config() + list(arguments)))
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
