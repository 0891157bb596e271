"""A sweep folder's overview of its trials: results.csv, results.md, pareto.json, pareto.png, pareto.html.

Usage::

    paths = write_overview(rows, front, sweep_dir, objective="primary_metric", cost="tflops", title=name)

Rows are the result store's latest row per config hash (``results.jsonl``). Columns come in a fixed
order — trial, status, the hyperparameters and group choices (named as on the command line), the
objective and cost — then every other metric alphabetically, so the CSV of two sweeps lines up.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Sequence

from rediprune.pruning.hyperparameters import NAMES
from rediprune.reports.render import write_text

LEAD = ("trial", "status", *NAMES, "seed", "query", "pruner", "backbone", "dataset")
MARKDOWN_METRICS = ("tflops_ratio", "visual_tokens_per_frame_after", "samples", "errors", "trial_seconds")


def columns(rows: Sequence[dict[str, Any]], objective: str, cost: str) -> list[str]:
    seen = dict.fromkeys(key for row in rows for key in row)
    first = [k for k in LEAD + (objective, cost) if k in seen]
    return first + sorted(k for k in seen if k not in first and k != "traceback")


def _sort_key(row: dict[str, Any]) -> tuple[int, Any]:
    trial = row.get("trial")
    return (0, trial) if isinstance(trial, int) else (1, str(trial))


def csv_text(rows: Sequence[dict[str, Any]], objective: str, cost: str) -> str:
    cols = columns(rows, objective, cost)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    for row in sorted(rows, key=_sort_key):
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in cols})
    return text.getvalue()


def fmt(value: Any) -> str:
    """A value as a Markdown cell or summary line shows it (4 significant digits, — for missing)."""
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
        lines.append("| " + " | ".join([mark] + [fmt(row.get(k)) for k in cols]) + " |")
    return "\n".join(lines) + "\n"


def write_overview(
    rows: Sequence[dict[str, Any]],
    front: Sequence[dict[str, Any]],
    folder: Path,
    *,
    objective: str,
    cost: str,
    title: str,
) -> dict[str, Path]:
    """results.csv, results.md, pareto.json, and the plots when a trial succeeded, in ``folder``."""
    from rediprune.reports import trial_intervals
    from rediprune.reports.plots import write_html, write_png

    folder.mkdir(parents=True, exist_ok=True)
    md = [f"# Sweep {title}\n", f"{len(rows)} trials; ★ = on the {objective}-vs-{cost} Pareto front.\n",
          markdown_table(rows, front, objective, cost)]
    paths = {"csv": write_text(folder / "results.csv", csv_text(rows, objective, cost)),
             "md": write_text(folder / "results.md", "\n".join(md)),
             "pareto": write_text(folder / "pareto.json", json.dumps(list(front), indent=2, default=str))}
    if any(r.get("status", "ok") == "ok" for r in rows):
        bars = trial_intervals(folder, rows, objective)  # the paper tables' bootstrap intervals, as error bars
        for kind, write in (("png", write_png), ("html", write_html)):
            paths[kind] = write(rows, front, folder / f"pareto.{kind}", objective=objective, cost=cost, title=title,
                                intervals=bars)
    return paths


__all__ = ["columns", "csv_text", "fmt", "markdown_table", "write_overview"]
