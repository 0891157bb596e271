"""The accuracy-vs-cost Pareto front of a sweep's results.

Usage::

    front = pareto_front(rows, objective="primary_metric", cost="tflops")   # rows sorted by cost

A row is on the front when no other row is at least as good on both (higher objective, lower cost) and
strictly better on one. Rows with the same config hash count once (NSGA-II can propose a point twice);
different configs with equal (objective, cost) values are all on the front, as in Optuna's
``Study.best_trials`` (neither dominates the other).
"""
from __future__ import annotations

import math
from typing import Any, Iterable


def finite_point(row: dict[str, Any], objective: str, cost: str) -> tuple[float, float] | None:
    """A row's finite (objective, cost) values, or None where either is missing or not a finite number."""
    try:
        y, x = float(row[objective]), float(row[cost])
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(x) and math.isfinite(y)):
        return None
    return y, x


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(objective, cost) ``a`` dominates ``b``: no worse on both, better on one."""
    return a[0] >= b[0] and a[1] <= b[1] and (a[0] > b[0] or a[1] < b[1])


def pareto_front(
    rows: Iterable[dict[str, Any]], objective: str = "primary_metric", cost: str = "tflops"
) -> list[dict[str, Any]]:
    """Non-dominated successful rows, without duplicates, sorted by increasing cost."""
    seen_hash: set[str] = set()
    candidates: list[tuple[tuple[float, float], dict[str, Any]]] = []
    for row in rows:
        if row.get("status", "ok") != "ok":
            continue
        point = finite_point(row, objective, cost)
        key = row.get("hash")
        if point is None or (key is not None and key in seen_hash):
            continue
        if key is not None:
            seen_hash.add(key)
        candidates.append((point, row))
    front = [(p, row) for p, row in candidates if not any(dominates(q, p) for q, _ in candidates)]
    front.sort(key=lambda item: (item[0][1], -item[0][0]))
    return [row for _, row in front]


__all__ = ["dominates", "finite_point", "pareto_front"]
