"""Visual-token pruning algorithms; they know nothing of models.

Usage::

    from rediprune.pruning import rediprune_select, build_queries, get_pruner, PruneParams

    idx = rediprune_select(features, query, ratio=0.1, alpha=0.5)          # (B, k) sorted indices
    q = build_queries(input_ids, attention_mask, embed_weight, visual_ids, "exponential")  # (B, D)
    mask = get_pruner("divprune").keep_mask(features, PruneParams(ratio=0.1))

``selection`` is ReDiPrune (SPEC §2), ``query`` the prompt query weighting (SPEC §3), ``baselines``
DivPrune, CDPruner, random and none (SPEC §4), ``registry`` the common interface, ``hyperparameters`` the
hyperparameters (name, type, range, default, meaning) and allowed values, declared once.
"""
from typing import Any

# Imported on first use (PEP 562), so the torch-free declarations (``hyperparameters``: the table of
# hyperparameters and the allowed values) load without torch, e.g. for the config checks and --help.
_LAZY = {
    "QUERY_STRATEGIES": "hyperparameters",
    "HYPERPARAMETERS": "hyperparameters",
    "Placement": "hyperparameters",
    "build_queries": "query",
    "Need": "registry",
    "PruneParams": "registry",
    "Pruner": "registry",
    "available_pruners": "registry",
    "get_pruner": "registry",
    "keep_count": "registry",
    "register": "registry",
    "align_query": "selection",
    "rediprune_select": "selection",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'rediprune.pruning' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"rediprune.pruning.{_LAZY[name]}"), name)


__all__ = sorted(_LAZY)
