"""The paper's tables from sweep folders: layouts as data, bootstrap intervals, paired tests, four formats.

Usage::

    python src/report.py outputs/sweeps/demo_table1 layout=table1        # on demand, no model, no Ray
    python src/report.py outputs/sweeps/a outputs/sweeps/b layout=types stats.resamples=2000 out=/tmp/r

    from rediprune.reports import make_reports
    made = make_reports([sweep_dir], ["table1"], config_dirs=[Path("conf")])    # what a sweep's end calls
    made.paths["table1"]["md"], made.wandb["report/table1"]

Steps, one module each: ``layout`` (the layout and statistics schemas, loading ``conf/report/layout``)
→ ``results`` (result rows and per-sample scores from the folders) → ``table`` (cells, intervals, tests,
best values) → ``render`` (Markdown, LaTeX, CSV, W&B tables). Beside them, a sweep folder's overview of
its trials: ``pareto`` (the accuracy-vs-cost front), ``plots`` (its PNG and HTML pictures) and
``overview`` (results.csv/.md, pareto.json and the plots). This package reads files only: it knows
nothing of Ray, Optuna, models or the sweep engine, which calls it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from rediprune.reports.layout import LayoutConfig, ReportError, StatsConfig, check_stats, load_layout
from rediprune.reports.results import read_sweeps

if TYPE_CHECKING:
    from rediprune.reports.table import Table

REPORTS_SUBDIR = "reports"  # <sweep folder>/reports/<layout>.{md,tex,csv}


@dataclass
class Made:
    tables: dict[str, Table] = field(default_factory=dict)
    paths: dict[str, dict[str, Path]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, str]:
        """Layout name → its Markdown file, or the error that stopped it (for a sweep's summary)."""
        out = {name: str(paths.get("md", next(iter(paths.values()), ""))) for name, paths in self.paths.items()}
        out.update({name: f"error: {message}" for name, message in self.errors.items()})
        return out

    @property
    def wandb(self) -> dict[str, Any]:
        from rediprune.reports.render import wandb_tables

        out: dict[str, Any] = {}
        for table in self.tables.values():
            out.update(wandb_tables(table))
        return out


def make_table(dirs: Sequence[Path | str], layout: LayoutConfig, stats: StatsConfig | None = None) -> Table:
    """Build one table over the sweep folders ``dirs`` (merged; later folders win for the same trial)."""
    from rediprune.reports.table import build_table  # scipy: imported when a table is built

    stats = check_stats(stats or StatsConfig())
    trials = read_sweeps(dirs)
    return build_table(trials, layout, stats, sweeps=[Path(d).name for d in dirs])


def make_reports(
    dirs: Sequence[Path | str],
    layouts: Sequence[str | LayoutConfig],
    *,
    config_dirs: Sequence[Path] = (),
    stats: StatsConfig | None = None,
    out: Path | None = None,
    formats: Sequence[str] = ("md", "tex", "csv"),
    keep_going: bool = False,
) -> Made:
    """Build and write each layout's table into ``out`` (default ``<first sweep>/reports``).

    ``keep_going``: a layout that cannot be built (ReportError) is recorded in ``errors`` and the others
    are still written — a sweep's end uses this, so a report problem never hides the sweep's results.
    """
    from rediprune.reports.render import write_table

    folder = Path(out) if out is not None else Path(dirs[0]).expanduser().resolve() / REPORTS_SUBDIR
    made = Made()
    for item in layouts:
        try:
            layout = item if isinstance(item, LayoutConfig) else load_layout(item, config_dirs)
            table = make_table(dirs, layout, stats)
        except ReportError as exc:
            if not keep_going:
                raise
            made.errors[str(getattr(item, "name", item))] = str(exc)
            continue
        made.tables[layout.name] = table
        made.paths[layout.name] = write_table(table, folder, formats)
    return made


def trial_intervals(sweep_dir: Path, rows: Sequence[dict[str, Any]], metric: str,
                    stats: StatsConfig | None = None) -> dict[str, tuple[float, float]]:
    """Config hash → bootstrap interval of ``metric`` for each row whose per-sample scores reproduce it
    (the same intervals as the tables; the sweep draws them as error bars on its Pareto plots)."""
    from rediprune.reports.results import Trial
    from rediprune.reports.stats import interval

    stats = check_stats(stats or StatsConfig())
    out = {}
    for row in rows:
        if row.get("status", "ok") != "ok" or "hash" not in row:
            continue
        scores = Trial(dict(row), Path(sweep_dir)).scores(metric)
        if scores:
            out[str(row["hash"])] = interval(list(scores.values()), stats)
    return out


__all__ = ["trial_intervals", "Made", "REPORTS_SUBDIR", "ReportError", "StatsConfig", "make_reports", "make_table"]
