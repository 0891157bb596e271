"""Answer reuse (issue 11): a sample whose LLM input was seen before reuses its greedy answer.

Runs the real tiny backbones; the reference is always the same generation with reuse off.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from rediprune.config.evaluation import BackboneConfig
from rediprune.models import PruningSettings, load_adapter
from rediprune.pruning import PruneParams

QUESTIONS = ["what color is the circle on the left ?", "how many squares are there ?", "count ?"]


def frame(seed: int, size: int = 64) -> Image.Image:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    for _ in range(4):
        x, y = rng.integers(0, size - 16, 2)
        pixels[y : y + 16, x : x + 16] = rng.integers(0, 255, 3, dtype=np.uint8)
    return Image.fromarray(pixels)


@pytest.fixture(scope="module", params=["llava", "video_llava"])
def adapter(request):
    a = load_adapter(BackboneConfig(family=request.param))
    yield a
    a.answer_cache = None


def _batch(adapter, rows=(0, 1, 2)):
    frames = 1 if adapter.family == "llava" else 2
    return adapter.prepare([QUESTIONS[r] for r in rows], [[frame(10 * r + i) for i in range(frames)] for r in rows])


def _run(adapter, settings, batch, cache):
    adapter.configure(settings)
    adapter.answer_cache = cache
    before = dict(adapter.answer_stats)
    result = adapter.generate(batch, max_new_tokens=6)
    delta = {k: adapter.answer_stats[k] - before[k] for k in before}
    return result, delta


def _same(a, b):
    assert a.texts == b.texts
    n = min(a.sequences.shape[1], b.sequences.shape[1])
    assert torch.equal(a.sequences[:, :n], b.sequences[:, :n])
    assert a.stats == [s.__class__(**{**s.__dict__, "selection_seconds": x.selection_seconds,
                                      "query_seconds": x.query_seconds}) for s, x in zip(b.stats, a.stats)]


def test_equal_selections_reuse_and_different_ones_generate(adapter):
    cache: dict = {}
    batch = _batch(adapter)
    first = PruningSettings(pruner="rediprune", params=PruneParams(ratio=0.25, alpha=0.5, tau=0.0, M=8, beta=2))
    # τ ≤ 0 under the reference pre-filter: M and β change nothing, so every answer is reused
    same = PruningSettings(pruner="rediprune", params=PruneParams(ratio=0.25, alpha=0.5, tau=0.0, M=64, beta=3))
    other = PruningSettings(pruner="rediprune", params=PruneParams(ratio=0.5, alpha=0.5))
    got, delta = _run(adapter, first, batch, cache)
    assert delta == {"reused": 0, "generated": 3}
    _same(got, _run(adapter, first, batch, None)[0])
    got, delta = _run(adapter, same, batch, cache)
    assert delta == {"reused": 3, "generated": 0}
    _same(got, _run(adapter, same, batch, None)[0])
    got, delta = _run(adapter, other, batch, cache)
    assert delta == {"reused": 0, "generated": 3}
    _same(got, _run(adapter, other, batch, None)[0])


def test_a_partly_seen_batch_generates_only_the_new_samples(adapter):
    cache: dict = {}
    settings = PruningSettings(pruner="rediprune", params=PruneParams(ratio=0.25, alpha=1.0))
    _run(adapter, settings, _batch(adapter, (1,)), cache)  # sample 1 seen alone
    batch = _batch(adapter)
    got, delta = _run(adapter, settings, batch, cache)
    assert delta == {"reused": 1, "generated": 2}
    _same(got, _run(adapter, settings, batch, None)[0])


def test_the_key_follows_the_prompt_the_pixels_and_generation_settings(adapter):
    settings = PruningSettings(pruner="rediprune", params=PruneParams(ratio=0.25))
    adapter.configure(settings)
    batch = _batch(adapter)
    adapter.generate(batch, max_new_tokens=2)
    masks = adapter._last_masks
    keys = {adapter.answer_key(batch, b, masks[b], 6, {}) for b in range(3)}
    assert len(keys) == 3  # different prompts and pixels
    key = adapter.answer_key(batch, 0, masks[0], 6, {})
    assert adapter.answer_key(batch, 0, masks[0], 7, {}) != key
    assert adapter.answer_key(batch, 0, ~masks[0], 6, {}) != key
    assert adapter.answer_key(batch.subset([0]), 0, masks[0], 6, {}) == key  # padding is not part of it


# ------------------------------------------------------------------------------------ whole sweeps
_SAME = ("primary_metric", "tflops", "tflops_full", "samples", "errors", "visual_tokens_after",
         "visual_tokens_before", "text_tokens_mean")


def _sweep(root, name: str, *args: str) -> tuple[list[dict], str]:
    import json
    import subprocess
    import sys
    from pathlib import Path

    from rediprune.reports.results import read_rows

    repo = Path(__file__).resolve().parents[1]
    folder = root / name
    from conftest import pin_tiny

    cmd = [sys.executable, "src/sweep.py", "-m", *pin_tiny(["tau=0", "M=8,16", "beta=2,3", *args]),
           "launch.num_workers=1", "wandb=disabled", "measure.timing_samples=0", "measure.flops_samples=0",
           f"hydra.sweep.dir={folder}", f"cache_dir={root / 'cache'}", f"hf_home={root / 'hf_home'}"]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    rows = read_rows(folder / "results.jsonl")
    for row in rows:
        answers = [json.loads(line) for line in (folder / str(row["trial"]) / "samples.jsonl").read_text().splitlines()]
        row["answers"] = [(a["doc_id"], a["filtered_resps"], {k: v for k, v in a["stats"].items()
                                                               if not k.endswith("_seconds")}) for a in answers]
    return sorted(rows, key=lambda r: (r["M"], r["beta"])), proc.stdout


@pytest.mark.slow
def test_a_sweep_with_reuse_equals_the_same_sweep_without_it(tmp_path):
    """τ = 0 under the reference pre-filter: M and β change nothing, so one trial generates, three reuse."""
    on, said = _sweep(tmp_path, "on")
    off, _ = _sweep(tmp_path, "off", "search.reuse_answers=false")
    # said before dispatch, one line per idle parameter
    assert "note: M is swept (8, 16) but changes nothing here: the reference pre-filter" in said
    assert "note: beta is swept (2.0, 3.0) but changes nothing here" in said
    assert len(on) == len(off) == 4
    for a, b in zip(on, off):
        assert (a["M"], a["beta"]) == (b["M"], b["beta"])
        assert {k: a.get(k) for k in _SAME} == {k: b.get(k) for k in _SAME}
        assert {k: v for k, v in a.items() if k.startswith("metric/")} == {
            k: v for k, v in b.items() if k.startswith("metric/")}
        assert a["answers"] == b["answers"]  # per sample: the answer and its token accounting
    samples = on[0]["samples"]
    assert sum(r["answers_generated"] for r in on) == samples  # one trial's worth of generation
    assert sum(r["answers_reused"] for r in on) == 3 * samples
    assert all(r["answers_generated"] == r["answers_reused"] == 0 for r in off)  # the store was unplugged
