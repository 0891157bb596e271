"""The Pareto front as pictures: a PNG (matplotlib, Agg) and an interactive HTML page (plotly).

Usage::

    write_png(rows, front, Path("pareto.png"), objective="primary_metric", cost="tflops", title="grid-…")
    write_html(rows, front, Path("pareto.html"), objective="primary_metric", cost="tflops", title="grid-…")

Every successful trial is a grey point, the non-dominated ones are red and joined by the frontier
staircase. The HTML embeds plotly.js (about 4.8 MB) so it opens without network; hovering a point shows
its hyperparameters and job number.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from rediprune.sweep.pareto import finite_point

HOVER_KEYS = ("trial", "ratio", "alpha", "tau", "M", "beta", "query", "pruner", "backbone", "dataset")


def _xy(rows: Sequence[dict[str, Any]], objective: str, cost: str) -> tuple[list[float], list[float]]:
    """Cost (x) and objective (y) of the rows that have both."""
    points = [p for p in (finite_point(row, objective, cost) for row in rows) if p is not None]
    return [x for _, x in points], [y for y, _ in points]


def _ok(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("status", "ok") == "ok"]


def write_png(
    rows: Sequence[dict[str, Any]],
    front: Sequence[dict[str, Any]],
    path: Path,
    *,
    objective: str,
    cost: str,
    title: str,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    xs, ys = _xy(_ok(rows), objective, cost)
    ax.scatter(xs, ys, s=22, color="0.6", label=f"trials ({len(xs)})", zorder=2)
    fx, fy = _xy(front, objective, cost)
    if fx:
        ax.step(fx, fy, where="post", color="tab:red", linewidth=1.2, zorder=3)
        ax.scatter(fx, fy, s=36, color="tab:red", label=f"Pareto front ({len(fx)})", zorder=4)
        for row, x, y in zip(front, fx, fy):
            ax.annotate(f"r={row.get('ratio')} α={row.get('alpha')}", (x, y), textcoords="offset points",
                        xytext=(4, 4), fontsize=7)
    ax.set_xlabel(f"{cost} (lower is better)")
    ax.set_ylabel(f"{objective} (higher is better)")
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
) -> Path:
    import plotly.graph_objects as go

    def hover(subset: Sequence[dict[str, Any]]) -> list[str]:
        return ["<br>".join(f"{k}={r.get(k)}" for k in HOVER_KEYS if k in r) for r in subset]

    ok = [r for r in _ok(rows) if r not in front]
    fig = go.Figure()
    xs, ys = _xy(ok, objective, cost)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name="trials", marker=dict(color="grey", size=8),
                             text=hover(ok), hoverinfo="text+x+y"))
    fx, fy = _xy(front, objective, cost)
    fig.add_trace(go.Scatter(x=fx, y=fy, mode="lines+markers", name="Pareto front", line_shape="hv",
                             marker=dict(color="crimson", size=10), text=hover(front), hoverinfo="text+x+y"))
    fig.update_layout(title=title, xaxis_title=f"{cost} (lower is better)",
                      yaxis_title=f"{objective} (higher is better)", template="plotly_white")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path


__all__ = ["write_html", "write_png"]
