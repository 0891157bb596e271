"""Names that make a sweep resumable: the sweep name (from the command) and a trial's config hash.

Usage::

    sweep_name(None, "grid", ["ratio=0.05,0.1", "alpha=0,1"])   # 'grid-3f9a1c2e' — same command, same name
    config_hash(task_cfg)                                        # sha256 hex of what the result depends on
    wandb_id("grid-3f9a1c2e", "ab12…")                           # 'grid-3f9a1c2e-ab12cd34ef56'

A rerun of the same command lands in the same folder (``outputs/sweeps/<name>``) and skips trials whose
hash already has a result there. Overrides that do not change results (where and how trials run, W&B,
how many Optuna trials) are left out of the name, so ``launch.num_workers=4`` on a rerun still resumes.
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Iterable, Mapping

# Override keys that never change a trial's result.
_NOT_IDENTITY = ("launch", "wandb", "hydra", "search.name", "search.skip_finished", "search.n_trials",
                 "search.heartbeat_interval", "search.grace_period", "search.max_retry")
# Top-level keys of a trial's (evaluation) config left out of its hash: where caches live, not what it computes.
_HASH_EXCLUDE = ("cache_dir", "hf_home", "hydra")


def _override_key(override: str) -> str:
    key = override.split("=", 1)[0].lstrip("+~")
    return key


def canonical_value(value: Any) -> str:
    """One spelling per value: ``0.1``, ``0.10`` and ``1e-1`` are the same number; ``16`` and ``16.0`` too."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def canonical_override(text: str) -> str:
    """An override spelled by its values (parsed with Hydra's grammar): a list's values unique and sorted,
    so ``ratio=0.10,0.05,0.1`` and ``ratio=0.05,0.1`` name the same sweep. Unparsable text stays as it is."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        override = OverridesParser.create().parse_overrides([text])[0]
    except HydraException:
        return text
    head = text.split("=", 1)[0]
    if override.is_delete() or (override.is_sweep_override() and override.is_interval_sweep()):
        return text
    if override.is_sweep_override():
        values = sorted({canonical_value(v) for v in override.sweep_iterator()})
    else:
        values = [canonical_value(override.value())]
    return f"{head}={','.join(values)}"


def sweep_name(name: str | None, kind: str, overrides: Iterable[str]) -> str:
    """``name`` if given, else ``<kind>-<8 hex>`` of the identity-defining command-line overrides, by value."""
    if name:
        return str(name)
    kept = sorted(
        canonical_override(str(o))
        for o in overrides
        if not any(_override_key(str(o)) == k or _override_key(str(o)).startswith(k + ".") for k in _NOT_IDENTITY)
    )
    digest = hashlib.sha256("\n".join(kept).encode()).hexdigest()[:8]
    return f"{kind}-{digest}"


def canonical(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a resolved task config a trial's result depends on (plain containers)."""
    return {k: v for k, v in cfg.items() if k not in _HASH_EXCLUDE}


def config_hash(cfg: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of :func:`canonical` (key order and int/float-free of YAML quirks)."""
    text = json.dumps(canonical(cfg), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def wandb_id(sweep: str, cfg_hash: str, suffix: str = "") -> str:
    """A W&B run id from the sweep and the trial hash: ≤ 64 chars of [a-z0-9_-], stable across retries."""
    base = re.sub(r"[^a-z0-9_-]+", "-", sweep.lower()).strip("-")[:40] or "sweep"
    tail = suffix or cfg_hash[:12]
    return f"{base}-{tail}"[:64]


__all__ = ["canonical", "canonical_override", "canonical_value", "config_hash", "sweep_name", "wandb_id"]
