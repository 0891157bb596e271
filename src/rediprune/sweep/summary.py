"""The end of a sweep: the paper-table layouts it names and the summary printed to the console.

Usage (``SweepDriver.finish`` does this, after ``rediprune.reports.overview.write_overview``)::

    made = paper_tables(sweep_dir, run.search.report, master_config)   # <sweep folder>/reports/<layout>.*
    print(summary_text(stats))                                         # stats as the driver builds them
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from rediprune.pruning.hyperparameters import SWEPT
from rediprune.reports.overview import fmt

log = logging.getLogger(__name__)


def paper_tables(sweep_dir: Path, layouts: Sequence[str], master: Any) -> Any:
    """The paper-table layouts named by ``search.report``, written to ``<sweep folder>/reports``.

    Layout names are looked up in ``report/layout/`` of the sweep's Hydra config folders (``conf/``, and a
    ``--config-dir`` such as ``sweeps/``). A layout that cannot be built is logged and reported in the
    summary, never failing the sweep whose results are already stored. Returns ``rediprune.reports.Made``.
    """
    from omegaconf import OmegaConf

    from rediprune.reports import make_reports

    sources = OmegaConf.select(master, "hydra.runtime.config_sources", default=None) or []
    config_dirs = [Path(str(s.path)) for s in sources if s.schema == "file"]
    made = make_reports([sweep_dir], list(layouts), config_dirs=config_dirs, keep_going=True)
    for name, message in made.errors.items():
        log.warning("report %s not written: %s", name, message)
    return made


def _params(row: dict[str, Any]) -> str:
    return " ".join(f"{k}={row.get(k)}" for k in SWEPT if k in row)


def summary_text(s: dict[str, Any]) -> str:
    """The end-of-sweep summary printed to the console (``s`` as built by the driver)."""
    lines = [
        f"sweep {s['name']}: {s['trials']} trials — {s['ran']} ran, {s['skipped']} skipped (already done), "
        f"{s['failed']} failed — {s['wall_seconds']:.1f} s",
        f"model loads: {s['model_loads']} on {s['workers']} workers · feature cache: {s['cache_hits']} hits, "
        f"{s['cache_misses']} misses ({s['cache_disk_hits']} read from {s['cache_dir']})",
    ]
    if s.get("answers_reused") is not None:  # search.reuse_answers: answers reused / generated
        lines.append(f"answers: {s['answers_reused']} reused, {s.get('answers_generated', 0)} generated")
    best = s.get("best")
    if best:
        lines.append(f"best {s['objective']}={fmt(best.get(s['objective']))} at {_params(best)} "
                     f"({s['cost']}={fmt(best.get(s['cost']))}, trial {best.get('trial')})")
    elif s.get("ok_rows"):  # e.g. search.objective=metric/<a metric this task does not report>
        lines.append(f"warning: no best trial: search.objective={s['objective']!r} is a number in none of the "
                     f"{s['ok_rows']} successful result rows (results.csv lists their columns)")
    front = s.get("front") or []
    if front:
        lines.append(f"Pareto front ({len(front)} of {s['ok_rows']}), {s['cost']} ascending:")
        for row in front:
            lines.append(f"  {s['objective']}={fmt(row.get(s['objective']))} {s['cost']}={fmt(row.get(s['cost']))}"
                         f"  {_params(row)}  [trial {row.get('trial')}]")
    for row in s.get("failures", []):
        lines.append(f"FAILED trial {row.get('trial')}: {row.get('error')} — {row.get('job_dir')}/traceback.txt")
    for name, where in (s.get("paper_tables") or {}).items():
        lines.append(f"table {name}: {where}" + ("" if where.startswith("error") else " (.tex, .csv beside it)"))
    if s.get("wandb"):
        lines.append(f"W&B: {s['wandb']}")
    written = [name for name in ("results.csv", "results.jsonl", "pareto.png", "pareto.html")
               if (Path(s["folder"]) / name).is_file()]  # no plot without a successful trial
    lines.append(f"results: {s['folder']}/results.md ({', '.join(n.removeprefix('results.') for n in written)})")
    return "\n".join(lines)


__all__ = ["paper_tables", "summary_text"]
