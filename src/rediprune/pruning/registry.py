"""Pruners behind one interface, looked up by name.

Usage::

    from rediprune.pruning import PruneParams, get_pruner

    pruner = get_pruner("rediprune")
    keep = pruner.keep_mask(features, PruneParams(ratio=0.1, alpha=0.5), query=q)   # (F, L) bool
    kept = features[keep]                                                          # frames in order

A pruner declares what it needs (``requires``) and where it acts (``placement``) so model adapters can
place any of them without special cases: the adapter gives pre-projection pruners the encoder features
and post-projection pruners the projected features, and computes only the inputs a pruner asks for.
The result is a boolean keep mask over the (frames, tokens) grid of *one sample* (all frames share the
sample's prompt); per-frame pruners keep the same count in every frame, whole-input pruners (DivPrune)
may keep different counts per frame.
"""
from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from dataclasses import field, make_dataclass
from typing import Any, Callable, ClassVar

import torch

from rediprune.pruning.hyperparameters import (
    HYPERPARAMETERS,
    PREFILTERS,  # noqa: F401 - re-exported: the pre-filters a pruner's params may name
    SWEPT,
    Placement,
    hyperparameter_fields,
    values_of,
)


class Need(str, enum.Enum):
    """Inputs a pruner may need besides the visual features."""

    QUERY = "query"  # prompt-derived query vector (rediprune.pruning.query.build_queries)
    CLIP_RELEVANCE = "clip_relevance"  # per-token CLIP text-image relevance (CDPruner)


def _check(self: Any) -> None:
    from rediprune.pruning.validation import check_params

    check_params(values_of(self), self.prefilter)


# The hyperparameters shared by every pruner (each reads the ones it uses), from the table of
# ``rediprune.pruning.hyperparameters``, plus prefilter ("reference", SPEC §2.1, or "paper", §2.2) and the
# random pruner's seed. Frozen; invalid values raise ValueError naming the field.
PruneParams = make_dataclass(
    "PruneParams",
    [*hyperparameter_fields(), ("prefilter", str, field(default="reference")), ("seed", int, field(default=0))],
    frozen=True,
    namespace={"__post_init__": _check, "__module__": __name__},
)
PruneParams.__doc__ = "Hyperparameters of a pruner: " + ", ".join(f"{h.name} ({h.help})" for h in HYPERPARAMETERS)


def keep_count(ratio: float, length: int) -> int:
    """Per-frame budget k = max(1, round(r·L)) with round-half-to-even (SPEC conventions), at most L."""
    return min(length, max(1, round(ratio * length)))


class Pruner(abc.ABC):
    """A visual-token pruner. Subclasses set the class attributes and implement ``keep_mask``."""

    name: ClassVar[str]
    requires: ClassVar[frozenset[Need]] = frozenset()
    placement: ClassVar[Placement] = Placement.PRE_PROJECTION
    per_frame: ClassVar[bool] = True  # False: one budget round(r·F·L) over all frames of the sample
    # Swept names (``hyperparameters.SWEPT``: the hyperparameters and query) this pruner ever reads; the others
    # cannot change what it keeps (see ``inert_hyperparameters``)
    hyperparameters: ClassVar[frozenset[str]] = frozenset({"ratio"})
    # True: the frames of several samples may go through one call, with a per-frame query (F, Dq) and
    # ``frames_per_sample`` naming which rows belong to which sample; each sample's result is the same
    # as in a call of its own (a frame's selection depends only on its own sample's rows)
    frames_independent: ClassVar[bool] = False

    @abc.abstractmethod
    def keep_mask(
        self,
        features: torch.Tensor,
        params: PruneParams,
        *,
        query: torch.Tensor | None = None,
        relevance: torch.Tensor | None = None,
        frames_per_sample: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Return a bool mask (F, L) of tokens to keep for one sample's frames ``features`` (F, L, C).

        ``query`` is (Dq,) (Need.QUERY), or (F, Dq) one row per frame for ``frames_independent``
        pruners; ``relevance`` is (F, L) (Need.CLIP_RELEVANCE). ``frames_per_sample`` (counts ≥ 0
        summing to F) is given when a ``frames_independent`` pruner gets several samples' frames in one
        call; None means the F frames are one sample. A pruner that needs an input it was not given
        raises ValueError.
        """

    def inert_hyperparameters(self, prefilter: str = "reference", query: str = "exponential") -> dict[str, str]:
        """Swept hyperparameters that cannot change this pruner's selection here, each with the reason.

        ``prefilter`` and ``query`` (the query strategy) are the fixed settings they may depend on. A
        sweep over one of them repeats the same selection (and, greedy, the same answers).
        """
        return {
            name: f"pruner={self.name} does not use {name}"
            for name in SWEPT
            if name not in self.hyperparameters
        }

    def kept_per_frame(self, frames: int, length: int, params: PruneParams) -> int:
        """Total tokens this pruner keeps for ``frames`` frames of ``length`` tokens (for token accounting)."""
        if self.per_frame:
            return frames * keep_count(params.ratio, length)
        return keep_count(params.ratio, frames * length)


_REGISTRY: dict[str, Callable[[], Pruner]] = {}


def register(cls: type[Pruner]) -> type[Pruner]:
    """Class decorator: make ``cls`` available as ``get_pruner(cls.name)``."""
    _REGISTRY[cls.name] = cls
    return cls


def available_pruners() -> tuple[str, ...]:
    """Names accepted by :func:`get_pruner`, sorted."""
    _load_builtin()
    return tuple(sorted(_REGISTRY))


def get_pruner(name: str) -> Pruner:
    """Instantiate the pruner registered as ``name``; unknown names raise ValueError listing the allowed."""
    _load_builtin()
    if name not in _REGISTRY:
        raise ValueError(f"pruner={name!r} is not a known pruner; allowed: {', '.join(available_pruners())}")
    return _REGISTRY[name]()


def _load_builtin() -> None:
    # Importing the modules runs their @register decorators; lazily, to keep import of this module cheap.
    from rediprune.pruning import baselines, selection  # noqa: F401
