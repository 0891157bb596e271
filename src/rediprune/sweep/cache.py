"""Hyperparameter-independent caches a resident worker plugs into its model adapter.

Usage::

    cache = TensorCache(Path("outputs/cache/features") / namespace(backbone=..., frames=8))
    adapter.feature_cache = cache        # the adapter keys entries by sample content hash
    cache.stats()                         # {"hits": 12, "disk_hits": 3, "misses": 4, "writes": 4}

Vision-encoder features (and prompt queries) depend on the checkpoint, dtype and the sample's pixels
or frames — never on ratio, alpha, tau, M, beta. The namespace folder is a hash of everything they do
depend on, so two sweeps, two workers or a later rerun share entries and a changed checkpoint never
reads stale ones. Entries live in memory (least recently used first out, bounded by bytes) and on disk
(one ``torch.save`` file per key, written to a temporary name and renamed, so readers never see half a
file). Values read back from disk are on the CPU; adapters move them to their device.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, Iterator

import torch

_SAFE_KEY = re.compile(r"[^A-Za-z0-9_.-]")


def namespace(**parts: Any) -> str:
    """A 16-hex folder name for what cached values depend on (checkpoint, dtype, frames, ...)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _nbytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.nelement()
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_nbytes(v) for v in value)
    return 64


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu")
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(v) for v in value)
    return value


class TensorCache(MutableMapping):
    """A memory-over-disk mapping from string keys to tensors (or lists/dicts of tensors)."""

    def __init__(self, folder: Path | None, max_memory_bytes: int = 2 << 30) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.max_memory_bytes = max_memory_bytes
        self._memory: OrderedDict[str, Any] = OrderedDict()
        self._memory_bytes = 0
        self.hits = 0  # found in memory
        self.disk_hits = 0  # found on disk (another worker, trial or sweep computed it)
        self.misses = 0
        self.writes = 0

    def _file(self, key: str) -> Path:
        assert self.folder is not None
        safe = _SAFE_KEY.sub("_", key)
        if len(safe) > 120 or safe != key:
            safe = hashlib.sha256(key.encode()).hexdigest()
        return self.folder / safe[:2] / f"{safe}.pt"

    def _remember(self, key: str, value: Any) -> None:
        if key in self._memory:
            self._memory_bytes -= _nbytes(self._memory.pop(key))
        self._memory[key] = value
        self._memory_bytes += _nbytes(value)
        while self._memory_bytes > self.max_memory_bytes and len(self._memory) > 1:
            _, old = self._memory.popitem(last=False)
            self._memory_bytes -= _nbytes(old)

    def __getitem__(self, key: str) -> Any:
        if key in self._memory:
            self._memory.move_to_end(key)
            self.hits += 1
            return self._memory[key]
        if self.folder is not None:
            path = self._file(key)
            try:
                value = torch.load(path, map_location="cpu", weights_only=True)
            except FileNotFoundError:
                pass
            except Exception:  # a corrupt file (disk full mid-write elsewhere): recompute it
                path.unlink(missing_ok=True)
            else:
                self.disk_hits += 1
                self._remember(key, value)
                return value
        self.misses += 1
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if key in self._memory:
            return True
        return self.folder is not None and isinstance(key, str) and self._file(key).exists()

    def __setitem__(self, key: str, value: Any) -> None:
        self._remember(key, value)
        if self.folder is None:
            return
        path = self._file(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(_to_cpu(value), fh)
            os.replace(tmp, path)
            self.writes += 1
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __delitem__(self, key: str) -> None:
        found = False
        if key in self._memory:
            self._memory_bytes -= _nbytes(self._memory.pop(key))
            found = True
        if self.folder is not None and self._file(key).exists():
            self._file(key).unlink()
            found = True
        if not found:
            raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._memory))

    def __len__(self) -> int:
        return len(self._memory)

    def stats(self) -> dict[str, int]:
        return {"hits": self.hits, "disk_hits": self.disk_hits, "misses": self.misses, "writes": self.writes}


__all__ = ["TensorCache", "namespace"]
