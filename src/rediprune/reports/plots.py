"""The Pareto front as pictures: a PNG (matplotlib, Agg) and an interactive HTML page (plotly).

Usage::

    write_png(rows, front, Path("pareto.png"), objective="primary_metric", cost="tflops", title="grid-…")
    write_html(rows, front, Path("pareto.html"), objective="primary_metric", cost="tflops", title="grid-…")

Every successful trial is a grey point, the non-dominated ones are red and joined by the frontier
staircase. Axes say what they show: the task's metric (``primary_metric_name`` on ``tasks``, from the rows)
and, for the paper's TFLOPs, "TFLOPs (ratio to unpruned, %)" — the front is computed on TFLOPs, which
for one backbone and task orders points exactly as this ratio does. Points are labelled by the values that
vary across the sweep (r, α, …). The unpruned model's accuracy (rows with pruner ``none``) is a dashed
reference line; a sweep without such a row says so on the plot. The HTML embeds plotly.js (about 4.8 MB)
so it opens without network; hovering a point shows its hyperparameters and job number. ``intervals``
(config hash → (low, high), from ``rediprune.reports.trial_intervals``: the bootstrap intervals of the
paper tables) draws each trial's interval of the objective as an error bar.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from rediprune.pruning.hyperparameters import HYPERPARAMETERS, NAMES
from rediprune.reports.pareto import finite_point

HOVER_KEYS = ("trial", *NAMES, "query", "query_source", "pruner", "backbone", "dataset")
# swept keys and their short labels on the plot
LABEL_KEYS = {**{h.name: h.symbol for h in HYPERPARAMETERS}, "query": "query",
              "query_source": "source", "pruner": "", "backbone": "", "dataset": ""}
MAX_LABELLED = 24  # beyond this many trials only the front is labelled
NO_REFERENCE = "no unpruned reference in this sweep (add a pruner=none trial)"


def _ok(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("status", "ok") == "ok"]


def _x(row: dict[str, Any], cost: str) -> float | None:
    """The plotted cost: TFLOPs as a percentage of the unpruned model's when the row has both."""
    if cost == "tflops":
        try:
            return 100.0 * float(row["tflops"]) / float(row["tflops_full"])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            return None
    point = finite_point(row, cost, cost)
    return None if point is None else point[0]


def _xy(rows: Sequence[dict[str, Any]], objective: str, cost: str) -> tuple[list[float], list[float], list[dict]]:
    """Plotted cost (x), objective (y) and the rows that have both."""
    xs, ys, kept = [], [], []
    for row in rows:
        point, x = finite_point(row, objective, cost), _x(row, cost)
        if point is not None and x is not None:
            xs.append(x)
            ys.append(point[0])
            kept.append(row)
    return xs, ys, kept


def axis_labels(rows: Sequence[dict[str, Any]], objective: str, cost: str) -> tuple[str, str]:
    """(x label, y label): the task's metric name and the cost in words."""
    y = objective
    if objective == "primary_metric":
        names = {str(r["primary_metric_name"]) for r in rows if r.get("primary_metric_name")}
        tasks = {str(r["tasks"]) for r in rows if r.get("tasks")}
        if names:
            y = "/".join(sorted(names)) + (f" on {', '.join(sorted(tasks))}" if tasks else "")
    x = "TFLOPs (ratio to unpruned, %)" if cost == "tflops" else cost
    return f"{x} — lower is better", f"{y} — higher is better"


def reference(rows: Sequence[dict[str, Any]], objective: str) -> float | None:
    """The unpruned model's objective: mean over the successful rows with pruner ``none`` (None if none)."""
    values = [finite_point(r, objective, objective) for r in _ok(rows) if r.get("pruner") == "none"]
    values = [v[0] for v in values if v is not None]
    return sum(values) / len(values) if values else None


def point_label(row: dict[str, Any], varying: Sequence[str]) -> str:
    parts = []
    for key in varying:
        short = LABEL_KEYS.get(key, key)
        parts.append(f"{short}={row.get(key)}" if short else str(row.get(key)))
    return " ".join(parts)


def varying_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The label keys whose values differ across ``rows`` (r and α when the sweep varies nothing else)."""
    keys = [k for k in LABEL_KEYS if len({repr(r.get(k)) for r in rows}) > 1]
    return keys or ["ratio", "alpha"]


def _yerr(rows: Sequence[dict[str, Any]], ys: Sequence[float], intervals: dict[str, Any] | None) -> list[list[float]]:
    """[below, above] error-bar lengths of the plotted rows (0 where a row has no interval)."""
    below, above = [], []
    for row, y in zip(rows, ys):
        low, high = (intervals or {}).get(str(row.get("hash")), (y, y))
        below.append(max(y - low, 0.0))
        above.append(max(high - y, 0.0))
    return [below, above]


def write_png(
    rows: Sequence[dict[str, Any]],
    front: Sequence[dict[str, Any]],
    path: Path,
    *,
    objective: str,
    cost: str,
    title: str,
    intervals: dict[str, Any] | None = None,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.8), dpi=120)
    ok = _ok(rows)
    xs, ys, kept = _xy(ok, objective, cost)
    varying = varying_keys(kept)
    ax.scatter(xs, ys, s=22, color="0.6", label=f"trials ({len(xs)})", zorder=2)
    bars = _yerr(kept, ys, intervals)
    if intervals:
        ax.errorbar(xs, ys, yerr=bars, fmt="none", ecolor="0.55", elinewidth=0.8, capsize=2, zorder=1,
                    label="95 % bootstrap interval")
    fx, fy, front_rows = _xy(front, objective, cost)
    if fx:
        ax.step(fx, fy, where="post", color="tab:red", linewidth=1.2, zorder=3)
        ax.scatter(fx, fy, s=36, color="tab:red", label=f"Pareto front ({len(fx)})", zorder=4)
    labelled = list(zip(kept, xs, ys)) if len(kept) <= MAX_LABELLED else list(zip(front_rows, fx, fy))
    for row, x, y in labelled:
        ax.annotate(point_label(row, varying), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7,
                    color="tab:red" if row in front_rows else "0.35")
    ref = reference(rows, objective)
    if ref is not None:
        ax.axhline(ref, color="tab:blue", linestyle="--", linewidth=1.0, label=f"unpruned ({ref:.3g})", zorder=1)
    else:
        ax.text(0.01, 0.99, NO_REFERENCE, transform=ax.transAxes, fontsize=7, va="top", color="0.3")
    xlabel, ylabel = axis_labels(ok, objective, cost)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ys:  # a flat sweep still gets a readable y range around its values
        ends = [y - b for y, b in zip(ys, bars[0])] + [y + a for y, a in zip(ys, bars[1])]
        lo, hi = min(ends + ([ref] if ref is not None else [])), max(ends + ([ref] if ref is not None else []))
        pad = max(0.05 * (hi - lo), 0.02)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_html(
    rows: Sequence[dict[str, Any]],
    front: Sequence[dict[str, Any]],
    path: Path,
    *,
    objective: str,
    cost: str,
    title: str,
    intervals: dict[str, Any] | None = None,
) -> Path:
    import plotly.graph_objects as go

    def error_y(subset: Sequence[dict[str, Any]], ys: Sequence[float]) -> Any:
        if not intervals:
            return None
        below, above = _yerr(subset, ys, intervals)
        return dict(type="data", symmetric=False, array=above, arrayminus=below, thickness=1, width=3)

    def hover(subset: Sequence[dict[str, Any]]) -> list[str]:
        return ["<br>".join(f"{k}={r.get(k)}" for k in HOVER_KEYS if k in r) for r in subset]

    every = _ok(rows)
    varying = varying_keys(every)
    ok = [r for r in every if r not in front]
    fig = go.Figure()
    xs, ys, kept = _xy(ok, objective, cost)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers+text" if len(every) <= MAX_LABELLED else "markers",
                             name="trials", marker=dict(color="grey", size=8), text=[point_label(r, varying) for r in kept],
                             textposition="top right", hovertext=hover(kept), hoverinfo="text+x+y",
                             error_y=error_y(kept, ys)))
    fx, fy, front_rows = _xy(front, objective, cost)
    fig.add_trace(go.Scatter(x=fx, y=fy, mode="lines+markers+text", name="Pareto front", line_shape="hv",
                             marker=dict(color="crimson", size=10), text=[point_label(r, varying) for r in front_rows],
                             textposition="top right", hovertext=hover(front_rows), hoverinfo="text+x+y",
                             error_y=error_y(front_rows, fy)))
    ref = reference(rows, objective)
    if ref is not None:
        fig.add_hline(y=ref, line_dash="dash", line_color="royalblue", annotation_text=f"unpruned ({ref:.3g})")
    else:
        fig.add_annotation(text=NO_REFERENCE, xref="paper", yref="paper", x=0, y=1.06, showarrow=False)
    xlabel, ylabel = axis_labels(every, objective, cost)
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, template="plotly_white")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path


__all__ = ["write_html", "write_png"]
