"""Input checks shared by every pruner: a ValueError names the parameter, the value and what is allowed."""
from __future__ import annotations

from typing import Any, Mapping

import torch

from rediprune.pruning.hyperparameters import PREFILTERS, hyperparameter
from rediprune.pruning.hyperparameters import fail as _fail


def check_params(values: Mapping[str, Any], prefilter: str = "reference") -> None:
    """Check hyperparameters by name against their declared ranges (SPEC §2), and the pre-filter."""
    for name, value in values.items():
        hyperparameter(name).check(value)
    if prefilter not in PREFILTERS:
        _fail("prefilter", prefilter, " or ".join(repr(p) for p in PREFILTERS))


def check_features(features: torch.Tensor, name: str = "features", *, check_finite: bool = True) -> torch.Tensor:
    """Return ``features`` as (B, L, C); accept (L, C). Reject other ranks, empty frames, non-finite values."""
    if not isinstance(features, torch.Tensor):
        _fail(name, type(features).__name__, "a torch.Tensor of shape (L, C) or (B, L, C)")
    if features.dim() == 2:
        features = features.unsqueeze(0)
    if features.dim() != 3:
        _fail(f"{name}.shape", tuple(features.shape), "(L, C) or (B, L, C)")
    if features.shape[0] == 0 or features.shape[1] == 0 or features.shape[2] == 0:
        _fail(f"{name}.shape", tuple(features.shape), "non-empty frames: B ≥ 1, L ≥ 1, C ≥ 1")
    if not features.is_floating_point():
        _fail(f"{name}.dtype", features.dtype, "a floating-point dtype")
    if check_finite and not all_finite(features):
        _fail(name, "non-finite values", "finite values only (no NaN or inf)")
    return features


def all_finite(tensor: torch.Tensor) -> bool:
    """Whether every element is finite, in one fp32 sum when it is (no bool tensor the input's size).

    A NaN or inf anywhere makes the sum non-finite; a non-finite sum of finite values (overflow) is
    told apart by the element-wise check, which only then runs. On the features a pruner gets, the
    element-wise check cost 2-3× the whole CDPruner selection.
    """
    if bool(torch.isfinite(tensor.sum(dtype=torch.float32))):
        return True
    return bool(torch.isfinite(tensor).all())


def check_query(query: torch.Tensor | None, frames: int, name: str = "query") -> torch.Tensor | None:
    """Return ``query`` as (1, Dq) (shared by all frames; broadcasts) or (B, Dq) (one per frame), or None."""
    if query is None:
        return None
    if not isinstance(query, torch.Tensor):
        _fail(name, type(query).__name__, "None or a torch.Tensor of shape (Dq,) or (B, Dq)")
    if query.dim() == 1:
        query = query.unsqueeze(0)
    elif query.dim() != 2 or query.shape[0] != frames:
        _fail(f"{name}.shape", tuple(query.shape), f"(Dq,) or ({frames}, Dq) for {frames} frame(s)")
    if query.shape[1] == 0:
        _fail(f"{name}.shape", tuple(query.shape), "a query width Dq ≥ 1")
    if not query.is_floating_point():
        _fail(f"{name}.dtype", query.dtype, "a floating-point dtype")
    if not bool(torch.isfinite(query).all()):
        _fail(name, "non-finite values", "finite values only (no NaN or inf)")
    return query
