"""Uncertainty of a table cell: a bootstrap interval of the mean and a paired test between two trials.

Usage::

    low, high = interval([1, 0, 1, 1], stats)                       # scipy.stats.bootstrap, seeded
    p = paired_p({("t", 0): 1.0, ...}, {("t", 0): 0.0, ...}, stats) # same samples, two configurations

Both call scipy.stats (``bootstrap``, ``permutation_test`` with ``permutation_type="samples"`` — the
paired design — or ``wilcoxon``); what is written here is only the handling scipy leaves to the caller:
a constant sample (every resample equal, where BCa is undefined) has the interval [v, v], and two trials
with identical scores on every shared sample have p = 1. Each call draws from a fresh generator seeded
with ``stats.seed``, so a cell's interval does not depend on which cells were computed before it.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats as sps

from rediprune.reports.layout import StatsConfig, Test


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def interval(scores: Sequence[float], stats: StatsConfig) -> tuple[float, float]:
    """The ``stats.confidence`` bootstrap interval of the mean of ``scores``."""
    x = np.asarray(scores, dtype=float)
    if x.size == 0:
        raise ValueError("no scores")
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = sps.bootstrap(
        (x,), _mean, vectorized=True, n_resamples=stats.resamples, confidence_level=stats.confidence,
        method=getattr(stats.method, "value", stats.method), rng=np.random.default_rng(stats.seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _diff_mean(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x - y, axis=axis)


def paired(a: Mapping[Any, float], b: Mapping[Any, float]) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the samples both trials scored, in a fixed order (sorted keys)."""
    keys = sorted(set(a) & set(b), key=repr)
    return np.array([a[k] for k in keys], dtype=float), np.array([b[k] for k in keys], dtype=float)


def paired_p(a: Mapping[Any, float], b: Mapping[Any, float], stats: StatsConfig) -> float | None:
    """Two-sided p-value that ``a`` and ``b`` score the same on their shared samples (None: < 2 shared)."""
    x, y = paired(a, b)
    if x.size < 2:
        return None
    if np.all(x == y):
        return 1.0
    test = getattr(stats.test, "value", stats.test)
    if test == Test.wilcoxon.value:
        return float(sps.wilcoxon(x, y, zero_method="wilcox", alternative="two-sided").pvalue)
    res = sps.permutation_test(
        (x, y), _diff_mean, vectorized=True, permutation_type="samples", n_resamples=stats.test_resamples,
        alternative="two-sided", rng=np.random.default_rng(stats.seed),
    )
    return float(res.pvalue)


def describe(stats: StatsConfig) -> tuple[str, str]:
    """Footnote texts: (the interval, the test)."""
    method = getattr(stats.method, "value", stats.method)
    ci = (f"[low, high]: {stats.confidence:.0%} {method} bootstrap interval of the mean over the per-sample "
          f"scores (scipy.stats.bootstrap, {stats.resamples} resamples, seed {stats.seed})")
    if getattr(stats.test, "value", stats.test) == Test.wilcoxon.value:
        test = "two-sided Wilcoxon signed-rank test on the paired per-sample scores (scipy.stats.wilcoxon)"
    else:
        test = (f"two-sided paired permutation test of the mean per-sample difference (scipy.stats.permutation_test, "
                f"{stats.test_resamples} resamples, seed {stats.seed})")
    return ci, test


__all__ = ["describe", "interval", "paired", "paired_p"]
