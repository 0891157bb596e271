"""The sweep's result store: ``results.jsonl`` in the sweep folder, one complete line per finished trial.

Usage::

    store = ResultStore(Path("outputs/sweeps/grid-3f9a1c2e"))
    if not store.finished(cfg_hash):
        store.append({"hash": cfg_hash, "status": "ok", "primary_metric": 0.5, ...})
    rows = store.latest()          # one row per hash, the last line written wins

Only the driver writes, holding ``lock()`` for the whole sweep so a second driver on the same folder
stops at once. Appending writes the old lines plus the new one to a temporary file in the same folder,
``fsync``s it and renames it over ``results.jsonl`` (then ``fsync``s the folder): the file is always
either the old or the new version, never a partial line, whatever kills the driver. (A plain
``O_APPEND`` write is not enough: Linux ends a write early, at a page boundary, when SIGKILL arrives
mid-copy — measured with 20 kB rows.) The rewrite costs a few milliseconds for thousands of rows. A
torn tail written by another tool is cut off when the store is opened. Lines that cannot be read (not
UTF-8, not JSON, no string ``hash`` — a disk error or a hand edit) are set aside into
``results.rejected.jsonl`` when the driver takes the lock, with a warning naming both files, and the
sweep goes on: their trials count as not run.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from rediprune.reports.results import RESULTS, parse_line

REJECTED = "results.rejected.jsonl"
LOGGED = "wandb.logged.jsonl"  # hashes whose W&B run finished: a rerun logs every other finished trial


def _clean(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become None (strict JSON), tuples lists, unknown objects strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def encode_line(row: dict[str, Any]) -> bytes:
    """One JSON object on one line, newline-terminated (no newline can occur inside: JSON escapes it)."""
    return (json.dumps(_clean(row), sort_keys=True, allow_nan=False) + "\n").encode()


def _digest(row: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(encode_line(row)).hexdigest()[:16]


class ResultStore:
    """Append-only JSON-lines store of trial results, keyed by config hash."""

    def __init__(self, sweep_dir: Path) -> None:
        self.path = Path(sweep_dir) / RESULTS
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair()
        self._data = self.path.read_bytes() if self.path.exists() else b""
        self._rows: dict[str, dict[str, Any]] = {}
        self._rejected: list[tuple[int, bytes]] = []  # (line number, raw line) of unreadable lines
        for number, raw in enumerate(self._data.splitlines(keepends=True), 1):
            row = parse_line(raw)
            if row is None:
                self._rejected.append((number, raw))
            else:
                self._rows[row["hash"]] = row
        self._lock_fd: int | None = None
        self._logged_path = self.path.parent / LOGGED
        self._logged: set[tuple[str, str]] = set()  # (hash, digest of the row that was logged)
        if self._logged_path.exists():
            for raw in self._logged_path.read_bytes().splitlines(keepends=True):
                entry = parse_line(raw)
                if entry is not None:
                    self._logged.add((entry["hash"], str(entry.get("row"))))
        self._logged_lock = threading.Lock()  # marked from the W&B thread

    def lock(self) -> None:
        """Take the sweep folder's exclusive lock (released when this process exits, even by SIGKILL)."""
        if self._lock_fd is not None:
            return
        fd = os.open(self.path.parent / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(f"another sweep is running in {self.path.parent} (lock {self.path.parent / '.lock'})")
        self._lock_fd = fd
        for stale in self.path.parent.glob(".results-*.tmp"):  # left by a writer killed mid-append
            stale.unlink(missing_ok=True)
        if self._rejected:
            self._set_aside()

    def _set_aside(self) -> None:
        """Move unreadable lines to ``results.rejected.jsonl`` (appended, kept as they were) and rewrite
        ``results.jsonl`` without them, so resuming never trips on them again."""
        aside = self.path.parent / REJECTED
        with open(aside, "ab") as fh:
            fh.write(b"".join(raw for _, raw in self._rejected))
            fh.flush()
            os.fsync(fh.fileno())
        bad = {number for number, _ in self._rejected}
        lines = self._data.splitlines(keepends=True)
        self._write(b"".join(line for number, line in enumerate(lines, 1) if number not in bad))
        numbers = ", ".join(str(n) for n in sorted(bad))
        print(f"warning: {len(bad)} unreadable line(s) of {self.path} (line {numbers}) set aside into {aside}; "
              "their trials will run again", file=sys.stderr)
        self._rejected = []

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _repair(self) -> None:
        """Cut a torn last line (no trailing newline) so the next append starts on a fresh line."""
        if not self.path.exists():
            return
        with open(self.path, "rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                fh.truncate(data.rfind(b"\n") + 1)
                fh.flush()
                os.fsync(fh.fileno())

    def append(self, row: dict[str, Any]) -> None:
        """Add ``row`` (must hold "hash") as one line: write old + new to a temp file, fsync, rename."""
        if "hash" not in row:
            raise ValueError("a result row needs its config 'hash'")
        line = encode_line(row)
        self._write(self._data + line)
        self._rows[row["hash"]] = json.loads(line)

    def _write(self, data: bytes) -> None:
        """Replace ``results.jsonl`` by ``data`` atomically (temp file, fsync, rename, fsync folder)."""
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".results-", suffix=".tmp")
        try:
            os.fchmod(fd, 0o644)  # mkstemp makes it 0600; results are as readable as every other report
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)
        self._data = data

    def mark_logged(self, row: dict[str, Any], run_id: str) -> None:
        """Record that the W&B run of ``row`` finished (one short line, appended and fsynced; a torn line
        is ignored on reading, which only means the run is logged once more)."""
        key = (row["hash"], _digest(row))
        with self._logged_lock:
            with open(self._logged_path, "ab") as fh:
                fh.write(encode_line({"hash": key[0], "row": key[1], "run_id": run_id}))
                fh.flush()
                os.fsync(fh.fileno())
            self._logged.add(key)

    def logged(self, row: dict[str, Any]) -> bool:
        """True when this very row (not an earlier attempt of its trial) was logged to W&B to the end."""
        return (row["hash"], _digest(row)) in self._logged

    def get(self, cfg_hash: str) -> dict[str, Any] | None:
        return self._rows.get(cfg_hash)

    def finished(self, cfg_hash: str) -> bool:
        """True when the latest row for ``cfg_hash`` is a success (failed trials run again)."""
        row = self._rows.get(cfg_hash)
        return row is not None and row.get("status") == "ok"

    def latest(self) -> list[dict[str, Any]]:
        """One row per config hash (the last written), in order of first appearance."""
        return list(self._rows.values())

    def __len__(self) -> int:
        return len(self._rows)


__all__ = ["LOGGED", "REJECTED", "RESULTS", "ResultStore", "encode_line"]
