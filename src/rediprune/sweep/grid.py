"""The grid: every combination of the command's value lists (``ratio=0.05,0.1 alpha=0,1``), run as one sweep.

Usage (``python src/sweep.py -m ratio=0.05,0.1 alpha=0,1``; the ``rediprune`` sweeper calls this)::

    returns = run_grid(driver, ["ratio=0.05,0.1", "alpha=0,1"])    # Hydra JobReturns, in job order

The cartesian product of Hydra's parsed overrides, in Hydra's order (as its BasicSweeper), with each
list's values once (``ratio=0.1,0.10`` runs one trial, with a note). A list over one of the sweep's own
settings (``launch.num_workers=1,2``) is refused: those are the driver's, not a trial's. Every job's config
is composed and checked before the first one is dispatched; the pool hands each free worker the next one.
"""
from __future__ import annotations

import itertools
import sys
from typing import Any, Sequence

from rediprune.sweep.config import is_sweep_override
from rediprune.sweep.driver import config_error
from rediprune.sweep.inert import inert_notes
from rediprune.sweep.naming import canonical_value


def unique_values(parser: Any, overrides: list[Any]) -> list[Any]:
    """Each list override with every value once (``ratio=0.05,0.05`` or ``ratio=0.1,0.10``), with a note."""
    out = []
    for override in overrides:
        if override.is_sweep_override() and not override.is_interval_sweep():
            strings = list(override.sweep_string_iterator())
            seen: dict[str, str] = {}
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


def combinations(arguments: Sequence[str]) -> list[list[str]]:
    """The jobs of a grid: one override list per combination of the value lists."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    lists = []
    for override in unique_values(parser, parser.parse_overrides(list(arguments))):
        key = override.get_key_element()
        if not override.is_sweep_override():
            lists.append([override.input_line])
        elif is_sweep_override(override.input_line):
            config_error(f"{override.input_line} is not allowed: the sweep's own settings (search, launch, wandb) "
                         "take one value; expected one value")
        elif not override.is_discrete_sweep():
            config_error(f"{override.input_line} is not allowed in a grid; expected values (a,b), range(…) or "
                         "choice(…); interval(…) is a range for search=pareto")
        else:
            lists.append([f"{key}={value}" for value in override.sweep_string_iterator()])
    return [list(job) for job in itertools.product(*lists)]


def run_grid(driver: Any, arguments: Sequence[str]) -> list[Any]:
    """Check every job of the grid, say which swept values change nothing, run them all on the pool."""
    jobs = [driver.prepare(overrides, num) for num, overrides in enumerate(combinations(arguments))]
    for line in inert_notes([{**job.describe, "prefilter": job.config.pruner.prefilter} for job in jobs]):
        print(line, flush=True)  # a swept hyperparameter that has no effect under these settings
    return driver.run_jobs(jobs)


__all__ = ["combinations", "run_grid", "unique_values"]
