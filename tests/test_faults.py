"""Fault injection on the sweep's state: damaged result lines, damaged cache entries, a full cache.

Each test damages state the way a disk error, a hand edit or a different model would, and checks that the
sweep recovers (or refuses in one line) and counts what it did. The driver-level faults (kills, shared
studies, secrets) are in ``test_faults_sweep.py``.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rediprune.evaluation.cache import TensorCache
from rediprune.reports.results import read_rows
from rediprune.sweep.store import REJECTED, RESULTS, ResultStore


# ----------------------------------------------------------------------------- results.jsonl
def test_unreadable_result_lines_are_set_aside_and_the_sweep_goes_on(tmp_path, capsys):
    good = [{"hash": f"h{i}", "status": "ok", "primary_metric": i / 10} for i in range(3)]
    bad = [b"\xff\xfe not utf-8\n", b"{not json\n", b'{"hash": 17, "status": "ok"}\n', b"[1, 2]\n"]
    lines = [json.dumps(good[0]).encode() + b"\n", bad[0], bad[1], json.dumps(good[1]).encode() + b"\n",
             bad[2], bad[3], json.dumps(good[2]).encode() + b"\n"]
    (tmp_path / RESULTS).write_bytes(b"".join(lines))

    store = ResultStore(tmp_path)  # reading never raises
    assert [r["hash"] for r in store.latest()] == ["h0", "h1", "h2"]
    store.lock()
    err = capsys.readouterr().err
    assert "4 unreadable line(s)" in err and "line 2, 3, 5, 6" in err and REJECTED in err

    assert (tmp_path / REJECTED).read_bytes() == b"".join(bad)  # kept as they were
    assert [r["hash"] for r in read_rows(tmp_path / RESULTS)] == ["h0", "h1", "h2"]
    store.append({"hash": "h3", "status": "ok"})
    store.unlock()
    again = ResultStore(tmp_path)
    again.lock()
    assert capsys.readouterr().err == ""  # nothing left to set aside
    assert [r["hash"] for r in again.latest()] == ["h0", "h1", "h2", "h3"]
    again.unlock()


# ----------------------------------------------------------------------------- feature cache
def _entry(cache: TensorCache, key: str) -> Path:
    return cache._file(key)


DAMAGES = {
    "truncated file": lambda p: p.write_bytes(p.read_bytes()[:40]),
    "not a torch file": lambda p: p.write_text("hello"),
    "NaN values": lambda p: torch.save(torch.full((5, 8), float("nan")), p),
    "integer tensor": lambda p: torch.save(torch.zeros(5, 8, dtype=torch.int64), p),
    "not a tensor": lambda p: torch.save({"a": 1}, p),
    "a folder": lambda p: (p.unlink(), p.mkdir(), (p / "x").write_text("x")),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_cache_entry_is_deleted_with_a_warning_and_recomputed(tmp_path, capsys, damage):
    writer = TensorCache(tmp_path)
    writer["k"] = torch.randn(5, 8)
    path = _entry(writer, "k")
    DAMAGES[damage](path)

    reader = TensorCache(tmp_path)  # a fresh worker: nothing in memory
    with pytest.raises(KeyError):
        reader["k"]
    assert reader.rejected == 1 and reader.misses == 1
    err = capsys.readouterr().err
    assert str(path) in err and "recomputing" in err
    assert not path.exists()
    reader["k"] = value = torch.randn(5, 8)  # the caller recomputes; the entry is whole again
    assert torch.equal(TensorCache(tmp_path)["k"], value)


def test_the_disk_cache_stays_under_its_bound_and_evicts_least_recently_used(tmp_path):
    one = torch.randn(64, 64)  # 16 KiB of data, ~17 KiB on disk
    cache = TensorCache(tmp_path, max_memory_bytes=1, max_disk_bytes=100_000)
    for i in range(4):
        cache[f"k{i}"] = one + i
    old = time.time() - 100
    for i in range(4):  # make the ages explicit: k1 oldest, k0 recently read
        os.utime(_entry(cache, f"k{i}"), (old + i, old + i))
    cache["k0"]  # a read refreshes k0
    for i in range(4, 8):
        cache[f"k{i}"] = one + i
    sizes = [p.stat().st_size for p in tmp_path.glob("*/*.pt")]
    assert sum(sizes) <= 100_000 and cache.evicted >= 2
    assert _entry(cache, "k0").exists() and not _entry(cache, "k1").exists()
    assert _entry(cache, "k7").exists()


def test_a_wrong_shape_entry_is_recomputed_by_a_real_adapter(tmp_path, capsys):
    """A cached tower state of another shape (another model's) is refused by the adapter's check."""
    from rediprune.config.evaluation import BackboneConfig
    from rediprune.models import load_adapter

    adapter = load_adapter(BackboneConfig(family="llava"))
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    batch = adapter.prepare(["what color is the circle ?"], [[image]])
    plain = adapter.encode(batch.pixel_values)

    adapter.feature_cache = TensorCache(tmp_path, validate=adapter.feature_problem)
    adapter.encode(batch.pixel_values)
    (path,) = tmp_path.glob("*/*.pt")
    cached = torch.load(path)
    torch.save(torch.randn(cached.shape[0] + 3, cached.shape[1]), path)  # finite, float, wrong shape

    adapter.feature_cache = cache = TensorCache(tmp_path, validate=adapter.feature_problem)
    again = adapter.encode(batch.pixel_values)
    assert cache.rejected == 1 and "gives" in capsys.readouterr().err
    assert torch.equal(again, plain)
