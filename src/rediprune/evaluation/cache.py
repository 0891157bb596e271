"""Hyperparameter-independent caches a resident worker plugs into its model adapter.

Usage::

    cache = TensorCache(Path("outputs/cache/features") / namespace(backbone=..., frames=8),
                        max_disk_bytes=20 << 30, validate=adapter.feature_problem)
    adapter.feature_cache = cache        # the adapter keys entries by sample content hash

Vision-encoder features (and prompt queries) depend on the checkpoint, dtype and the sample's pixels
or frames — never on the pruning hyperparameters. The namespace folder is a hash of everything they do
depend on, so two sweeps, two workers or a later rerun share entries and a changed checkpoint never
reads stale ones. Entries live in memory (least recently used first out, bounded by bytes) and on disk
(one ``torch.save`` file per key, written to a temporary name and renamed, so readers never see half a
file). Values read back from disk are on the CPU; adapters move them to their device.

Nothing read from disk is trusted: an entry that is not a regular file, does not load, holds anything but
finite floating tensors, or fails the owner's ``validate(key, value)`` check (the adapter checks the shape
its tower produces) is deleted with a warning naming the file, and counts as a miss so the caller
recomputes it — a damaged cache costs one recomputation, never a failed trial. The disk folder is bounded
by ``max_disk_bytes``: when a write takes it over, the least recently used files (by modification time,
which a read refreshes) are deleted down to 90 % of the bound.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections import OrderedDict
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, Callable, Iterator

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


def entry_problem(value: Any) -> str | None:
    """Why ``value`` cannot be a cached entry (tensors only: floating point, all finite), or None."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point():
            return f"dtype {value.dtype} is not floating point"
        if not bool(torch.isfinite(value).all()):
            return "it holds NaN or infinite values"
        return None
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)) and value:
        return next((p for p in map(entry_problem, value) if p), None)
    return f"it holds a {type(value).__name__}, not tensors"


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

    def __init__(
        self,
        folder: Path | None,
        max_memory_bytes: int = 2 << 30,
        *,
        max_disk_bytes: int | None = None,
        validate: Callable[[str, Any], str | None] | None = None,
    ) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.max_memory_bytes = max_memory_bytes
        self.max_disk_bytes = max_disk_bytes
        self.validate = validate
        self._memory: OrderedDict[str, Any] = OrderedDict()
        self._memory_bytes = 0
        self.hits = 0  # found in memory
        self.disk_hits = 0  # found on disk (another worker, trial or sweep computed it)
        self.misses = 0
        self.writes = 0
        self._disk_bytes: int | None = None  # running estimate; rescanned when it passes the bound
        self.rejected = 0  # disk entries found damaged, deleted and recomputed
        self.evicted = 0  # disk entries deleted to stay under max_disk_bytes

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
        value = self._load(key) if self.folder is not None else None
        if value is not None:
            self.disk_hits += 1
            self._remember(key, value)
            return value
        self.misses += 1
        raise KeyError(key)

    def _load(self, key: str) -> Any:
        """The checked entry on disk for ``key``, or None (absent, or damaged and now deleted)."""
        path = self._file(key)
        if not path.exists() and not path.is_symlink():
            return None
        if path.is_symlink() or not path.is_file():
            return self._reject(path, "it is not a regular file")
        try:
            value = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            return None  # evicted by another worker meanwhile
        except Exception as exc:  # truncated or foreign file
            return self._reject(path, f"it does not load ({type(exc).__name__})")
        problem = entry_problem(value) or (self.validate(key, value) if self.validate else None)
        if problem:
            return self._reject(path, problem)
        os.utime(path)  # recently used: last to be evicted
        return value

    def _reject(self, path: Path, problem: str) -> None:
        print(f"warning: feature cache entry {path} is unusable ({problem}); deleted, recomputing", file=sys.stderr)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        self.rejected += 1
        return None

    def __contains__(self, key: object) -> bool:
        if key in self._memory:
            return True
        return self.folder is not None and isinstance(key, str) and self._file(key).exists()

    def __setitem__(self, key: str, value: Any) -> None:
        self._remember(key, value)
        if self.folder is None:
            return
        path = self._file(key)
        if path.is_file():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(_to_cpu(value), fh)
            size = os.path.getsize(tmp)
            if path.is_dir() and not path.is_symlink():  # a damaged entry rename cannot replace
                shutil.rmtree(path, ignore_errors=True)
            os.replace(tmp, path)
            self.writes += 1
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if self.max_disk_bytes is not None:
            if self._disk_bytes is None:
                self._disk_bytes = sum(size for _, size, _ in self._entries())
            else:
                self._disk_bytes += size
            if self._disk_bytes > self.max_disk_bytes:
                self._evict()

    def _entries(self) -> list[tuple[float, int, Path]]:
        """(mtime, size, path) of every entry file on disk."""
        assert self.folder is not None
        entries = []
        for path in self.folder.glob("*/*.pt"):
            if path.name.startswith("."):
                continue  # another worker's write in progress
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # another worker evicted it
            entries.append((st.st_mtime, st.st_size, path))
        return entries

    def _evict(self) -> None:
        """Delete least recently used entry files until the folder is at 90 % of ``max_disk_bytes``
        (a fresh scan: other workers write to the same folder)."""
        assert self.max_disk_bytes is not None
        entries = self._entries()
        total = sum(size for _, size, _ in entries)
        target = 0.9 * self.max_disk_bytes
        for _, size, path in sorted(entries, key=lambda e: e[0]):
            if total <= target:
                break
            path.unlink(missing_ok=True)
            total -= size
            self.evicted += 1
        self._disk_bytes = total

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



__all__ = ["TensorCache", "entry_problem", "namespace"]
