"""Efficiency of a pruned model on a few samples: latency, peak memory, and FLOPs counted by torch.

Usage::

    from rediprune.evaluation.efficiency import measure_flops, measure_timing

    timing = measure_timing(adapter, inputs, samples=4, warmup=1, max_new_tokens=16)
    # {"prefill_ms": …, "e2e_ms": …, "selection_ms": …, "peak_mem_mb": …, "peak_mem_kind": "cpu_rss_growth"}
    flops = measure_flops(adapter, inputs, samples=2, backbone=run.backbone)
    # {"measured_tflops": …, "measured_tflops_true": …, "measured_vs_true": …, …}

``inputs`` are (question, frames) pairs captured from the evaluation itself, so timing and FLOPs are
measured on the prompts the model actually answered, one at a time (batch size 1, as in the paper's
Table 3). Timing: ``warmup`` untimed generations, then per sample one prefill (the forward pass over the
prompt, vision encoder and pruning included) and one end-to-end generation of ``max_new_tokens``, with
CUDA synchronisation around each. Selection time is the pruner's own time inside that generation, as the
adapter reports it. Peak memory is ``torch.cuda.max_memory_allocated`` on a GPU (the whole process'
tensors, weights included, like the paper's "max GPU memory"); on CPU, where no allocator keeps a peak,
it is the growth of the process' resident memory over the timed runs, sampled every 2 ms.

FLOPs: the prefill runs under ``torch.utils.flop_counter.FlopCounterMode`` with eager attention (the
counter does not see SDPA's fused kernel on CPU), and the count of the decoder (``language_model``) is
compared with :func:`rediprune.flops.true_tflops` at the same sequence length. The counter counts the
matmuls only — 2 FLOPs per multiply-add, the three SwiGLU matrices, QKᵀ and A·V over the full n×n square
— and so does ``true_tflops``; norms, rotary embeddings, softmax and activations are left out by both
(they are O(n·d), under 1 % here). The paper's formula (``tflops`` in the results) counts multiply-adds
and two FFN matrices; ``true = 2·paper + T·2·n·d·m`` for multi-head attention (SPEC §5). The lm_head
(2·d·V on the last position, as generation's prefill keeps only its logits) and the vision tower and
projector are reported apart. The adapter's feature cache is bypassed while timing and counting, so
both include the vision encoder, as the paper's numbers do.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time
from statistics import fmean
from typing import Any, Iterator, Sequence

import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from rediprune.flops import paper_tflops, true_tflops

Inputs = Sequence[tuple[str, list[Image.Image]]]


def model_device(adapter: Any) -> torch.device:
    model = getattr(adapter, "model", None)
    if model is not None:
        try:
            return next(model.parameters()).device
        except StopIteration:  # pragma: no cover
            pass
    return torch.device("cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _RssPeak:
    """Peak growth of this process' resident memory while the block runs (sampled by a thread)."""

    def __init__(self, interval: float = 0.002) -> None:
        import psutil

        self._proc = psutil.Process(os.getpid())
        self._interval = interval
        self._stop = threading.Event()
        self.base = self.peak = 0

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> "_RssPeak":
        self.base = self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def measure_timing(
    adapter: Any,
    inputs: Inputs,
    *,
    samples: int,
    warmup: int = 1,
    max_new_tokens: int = 16,
    modality: str | None = None,
) -> dict[str, Any]:
    """Mean prefill, end-to-end and selection latency (ms) and peak memory (MB) over ``samples`` inputs."""
    inputs = list(inputs)[:samples]
    empty = {"prefill_ms": None, "e2e_ms": None, "selection_ms": None, "peak_mem_mb": None,
             "peak_mem_kind": None, "timing_samples": 0}
    if not inputs:
        return empty
    device = model_device(adapter)
    batches = [adapter.prepare([q], [frames], modality=modality) for q, frames in inputs]
    with torch.inference_mode(), without_feature_cache(adapter):
        for _ in range(warmup):
            adapter.generate(batches[0], max_new_tokens)
        _sync(device)
        prefill, e2e, selection = [], [], []
        cuda = device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        with contextlib.nullcontext() if cuda else _RssPeak() as rss:
            for batch in batches:
                t0 = time.perf_counter()
                adapter.prefill(batch)
                _sync(device)
                t1 = time.perf_counter()
                result = adapter.generate(batch, max_new_tokens)
                _sync(device)
                t2 = time.perf_counter()
                prefill.append(1e3 * (t1 - t0))
                e2e.append(1e3 * (t2 - t1))
                selection.append(1e3 * sum(s.selection_seconds for s in result.stats))
    if cuda:
        peak, kind = torch.cuda.max_memory_allocated(device) / 2**20, "cuda_max_allocated"
    else:
        peak, kind = rss.growth_mb, "cpu_rss_growth"
    return {
        "prefill_ms": fmean(prefill),
        "e2e_ms": fmean(e2e),
        "selection_ms": fmean(selection),
        "peak_mem_mb": peak,
        "peak_mem_kind": kind,
        "timing_samples": len(batches),
    }


@contextlib.contextmanager
def without_feature_cache(adapter: Any) -> Iterator[None]:
    """Measure the whole pipeline: cached encoder features would skip the vision tower, and reused
    answers (``adapter.answer_cache``) the LLM, so both are off while timing."""
    saved = {name: getattr(adapter, name, None) for name in ("feature_cache", "answer_cache")}
    for name, cache in saved.items():
        if cache is not None:
            setattr(adapter, name, None)
    try:
        yield
    finally:
        for name, cache in saved.items():
            if cache is not None:
                setattr(adapter, name, cache)


@contextlib.contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Switch a transformers model (and its sub-models) to eager attention for the block, then restore."""
    config = model.config
    previous = {"": config._attn_implementation}
    for key in getattr(config, "sub_configs", {}):
        sub = getattr(config, key, None)
        if sub is not None and hasattr(sub, "_attn_implementation"):
            previous[key] = sub._attn_implementation
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


def _module_flops(counts: dict[str, dict[Any, int]], suffix: str) -> int | None:
    """FLOPs of the outermost module whose name ends with ``suffix`` (counts nest: parents include children)."""
    names = [n for n in counts if n.endswith(suffix)]
    if not names:
        return None
    return sum(counts[min(names, key=lambda n: n.count("."))].values())


def text_dims(model: Any) -> dict[str, int]:
    """The decoder's real dimensions, from the loaded model's text config."""
    text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    heads = text.num_attention_heads
    return {
        "layers": text.num_hidden_layers,
        "hidden": text.hidden_size,
        "ffn": text.intermediate_size,
        "heads": heads,
        "kv_heads": getattr(text, "num_key_value_heads", None) or heads,
        "vocab": text.vocab_size,
    }


def measure_flops(
    adapter: Any, inputs: Inputs, *, samples: int, backbone: Any, modality: str | None = None
) -> dict[str, Any]:
    """FLOPs of the prefill on ``samples`` inputs, counted by torch, and the analytic numbers beside them.

    Returned (TFLOPs, means per sample): ``measured_tflops`` (decoder), ``measured_tflops_lm_head``,
    ``measured_tflops_total`` (whole forward: vision tower, projector, pruning, decoder, lm_head),
    ``measured_tflops_true`` (:func:`true_tflops` at the measured sequence length, real model dims),
    ``measured_vs_true`` (1 within 0.1 %: both count the same matmuls), ``measured_tflops_paper`` (the
    paper's formula at the same length, with ``backbone``'s dims) and ``measured_seq_len``.
    """
    inputs = list(inputs)[:samples]
    keys = ("measured_tflops", "measured_tflops_lm_head", "measured_tflops_total", "measured_tflops_true",
            "measured_vs_true", "measured_tflops_paper", "measured_seq_len")
    if not inputs:
        return {**{k: None for k in keys}, "flops_samples": 0}
    model = adapter.model
    dims = text_dims(model)
    rows = []
    with torch.inference_mode(), eager_attention(model), without_feature_cache(adapter):
        for question, frames in inputs:
            batch = adapter.prepare([question], [frames], modality=modality)
            with FlopCounterMode(display=False) as counter:
                adapter.prefill(batch)
            stats = adapter.last_stats[0]
            n = stats.text_tokens + stats.visual_tokens_after
            counts = counter.get_flop_counts()
            decoder = _module_flops(counts, ".language_model")
            head = _module_flops(counts, ".lm_head") or 0
            true = true_tflops(dims["layers"], dims["hidden"], dims["ffn"], n, heads=dims["heads"],
                               kv_heads=dims["kv_heads"])
            _, paper = paper_tflops(backbone.layers, backbone.hidden, backbone.ffn, n, n)
            rows.append({
                "measured_tflops": None if decoder is None else decoder / 1e12,
                "measured_tflops_lm_head": head / 1e12,
                "measured_tflops_total": counter.get_total_flops() / 1e12,
                "measured_tflops_true": true,
                "measured_tflops_paper": paper,
                "measured_seq_len": n,
            })
    out = {k: (fmean(r[k] for r in rows) if all(r[k] is not None for r in rows) else None)
           for k in rows[0]}
    out["measured_vs_true"] = (
        out["measured_tflops"] / out["measured_tflops_true"] if out["measured_tflops"] is not None else None
    )
    out["flops_samples"] = len(rows)
    return out


__all__ = ["eager_attention", "measure_flops", "measure_timing", "model_device", "text_dims"]
