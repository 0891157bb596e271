"""Swept hyperparameters that cannot change any trial's selection: said once, before dispatch.

Usage::

    for line in inert_notes([{**job.describe, "prefilter": "reference"} for job in jobs]):
        print(line)   # note: M is swept (8, 16) but changes nothing here: the reference pre-filter ...

A value list over such a parameter repeats the same selections (and, decoding greedily, the same
answers): the reference pre-filter never reads M or β, DivPrune, CDPruner and random read no α, τ, M,
β or query, ``query=none`` makes α and τ idle. The rules are the pruners' own
(``Pruner.inert_hyperparameters``); this module only applies them to a sweep's trials.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rediprune.pruning import get_pruner
from rediprune.pruning.hyperparameters import SWEPT


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


def inert_notes(trials: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per swept hyperparameter that is inert in every trial (its values differ across trials).

    Each trial maps the swept names (``rediprune.pruning.hyperparameters.SWEPT``) to its values, plus ``pruner``
    and ``prefilter``.
    """
    lines = []
    for name in SWEPT:
        values = list(dict.fromkeys(_plain(t.get(name)) for t in trials))
        if len(values) < 2:
            continue
        reasons = [
            get_pruner(str(_plain(t["pruner"]))).inert_hyperparameters(
                str(_plain(t.get("prefilter", "reference"))), str(_plain(t.get("query", "exponential")))
            ).get(name)
            for t in trials
        ]
        if all(reasons):
            why = "; ".join(dict.fromkeys(r for r in reasons if r))
            shown = ", ".join(str(v) for v in values)
            lines.append(f"note: {name} is swept ({shown}) but changes nothing here: {why}")
    return lines


def inert_space_notes(names: Sequence[str], pruner: Any, prefilter: Any, query: Any) -> list[str]:
    """The same notes for a search space (``search=pareto``): ``names`` are the dimensions searched,
    the rest are the sweep's fixed settings (a searched ``query`` leaves α and τ live)."""
    rules = get_pruner(str(_plain(pruner))).inert_hyperparameters(
        str(_plain(prefilter)), "exponential" if "query" in names else str(_plain(query))
    )
    return [f"note: {name} is searched but changes nothing here: {rules[name]}" for name in names if name in rules]


__all__ = ["inert_notes", "inert_space_notes"]
