"""Sweep reports from the result store: results.csv, results.md, pareto.json and the end-of-sweep summary.

Usage::

    paths = write_reports(rows, front, sweep_dir, objective="primary_metric", cost="tflops", title=name)
    print(summary_text(stats))

Rows are the store's latest row per config hash. Columns come in a fixed order — trial, status, the
swept values and group choices (named as on the command line), the objective and cost — then every
other metric alphabetically, so the CSV of two sweeps lines up.
"""
from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any, Sequence

from rediprune.sweep.config import SPACE_PARAMS
from rediprune.sweep.store import write_text_atomic
from rediprune.sweep.trial import PARAM_KEYS

log = logging.getLogger(__name__)

LEAD = ("trial", "status") + PARAM_KEYS + ("query", "pruner", "backbone", "dataset")
MARKDOWN_METRICS = ("tflops_ratio", "visual_tokens_per_frame_after", "samples", "errors", "trial_seconds")


def columns(rows: Sequence[dict[str, Any]], objective: str, cost: str) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    first = [k for k in LEAD + (objective, cost) if k in seen]
    rest = sorted(k for k in seen if k not in first and k not in ("traceback",))
    return first + rest


def _sort_key(row: dict[str, Any]) -> tuple[int, Any]:
    trial = row.get("trial")
    return (0, trial) if isinstance(trial, int) else (1, str(trial))


def write_csv(rows: Sequence[dict[str, Any]], path: Path, objective: str, cost: str) -> Path:
    cols = columns(rows, objective, cost)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    for row in sorted(rows, key=_sort_key):
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in cols})
    write_text_atomic(path, text.getvalue())
    return path


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[dict[str, Any]], front: Sequence[dict[str, Any]], objective: str, cost: str) -> str:
    on_front = {r.get("hash") for r in front}
    present = {k for row in rows for k in row}
    cols = [k for k in LEAD if k in present] + [objective, cost] + [k for k in MARKDOWN_METRICS if k in present]
    lines = ["| " + " | ".join(["pareto"] + cols) + " |", "|" + "---|" * (len(cols) + 1)]
    for row in sorted(rows, key=_sort_key):
        mark = "★" if row.get("hash") in on_front else ""
        lines.append("| " + " | ".join([mark] + [_fmt(row.get(k)) for k in cols]) + " |")
    return "\n".join(lines) + "\n"


def write_reports(
    rows: Sequence[dict[str, Any]],
    front: Sequence[dict[str, Any]],
    folder: Path,
    *,
    objective: str,
    cost: str,
    title: str,
) -> dict[str, Path]:
    """results.csv, results.md, pareto.json, pareto.png and pareto.html in ``folder``."""
    from rediprune.sweep.plots import write_html, write_png

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": write_csv(rows, folder / "results.csv", objective, cost)}
    md = [f"# Sweep {title}\n", f"{len(rows)} trials; ★ = on the {objective}-vs-{cost} Pareto front.\n",
          markdown_table(rows, front, objective, cost)]
    write_text_atomic(folder / "results.md", "\n".join(md))
    paths["md"] = folder / "results.md"
    write_text_atomic(folder / "pareto.json", json.dumps(list(front), indent=2, default=str))
    paths["pareto"] = folder / "pareto.json"
    if any(r.get("status", "ok") == "ok" for r in rows):
        from rediprune.reports import trial_intervals

        bars = trial_intervals(folder, rows, objective)  # the paper tables' bootstrap intervals, as error bars
        paths["png"] = write_png(rows, front, folder / "pareto.png", objective=objective, cost=cost, title=title,
                                 intervals=bars)
        paths["html"] = write_html(rows, front, folder / "pareto.html", objective=objective, cost=cost, title=title,
                                   intervals=bars)
    return paths


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
    return " ".join(f"{k}={row.get(k)}" for k in SPACE_PARAMS if k in row)


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
        lines.append(f"best {s['objective']}={_fmt(best.get(s['objective']))} at {_params(best)} "
                     f"({s['cost']}={_fmt(best.get(s['cost']))}, trial {best.get('trial')})")
    elif s.get("ok_rows"):  # e.g. search.objective=metric/<a metric this task does not report>
        lines.append(f"warning: no best trial: search.objective={s['objective']!r} is a number in none of the "
                     f"{s['ok_rows']} successful result rows (results.csv lists their columns)")
    front = s.get("front") or []
    if front:
        lines.append(f"Pareto front ({len(front)} of {s['ok_rows']}), {s['cost']} ascending:")
        for row in front:
            lines.append(f"  {s['objective']}={_fmt(row.get(s['objective']))} {s['cost']}={_fmt(row.get(s['cost']))}"
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


__all__ = ["columns", "markdown_table", "paper_tables", "summary_text", "write_csv", "write_reports"]
