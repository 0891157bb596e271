"""Visual-token pruning algorithms; they know nothing of models.

Usage::

    from rediprune.pruning import rediprune_select, build_queries, get_pruner, PruneParams

    idx = rediprune_select(features, query, ratio=0.1, alpha=0.5)          # (B, k) sorted indices
    q = build_queries(input_ids, attention_mask, embed_weight, visual_ids, "exponential")  # (B, D)
    mask = get_pruner("divprune").keep_mask(features, PruneParams(ratio=0.1))

``selection`` is ReDiPrune (SPEC §2), ``query`` the prompt query weighting (SPEC §3), ``baselines``
DivPrune, CDPruner, random and none (SPEC §4), ``registry`` the common interface.
"""
from rediprune.pruning.query import QUERY_STRATEGIES, build_queries
from rediprune.pruning.registry import (
    Need,
    Placement,
    PruneParams,
    Pruner,
    available_pruners,
    get_pruner,
    keep_count,
    register,
)
from rediprune.pruning.selection import align_query, rediprune_select

__all__ = [
    "QUERY_STRATEGIES",
    "Need",
    "Placement",
    "PruneParams",
    "Pruner",
    "align_query",
    "available_pruners",
    "build_queries",
    "get_pruner",
    "keep_count",
    "rediprune_select",
    "register",
]
