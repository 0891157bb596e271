"""Analytic prefill cost of the LLM decoder: the paper's TFLOPs (SPEC §5) and a true-FLOPs estimate.

Usage::

    from rediprune.flops import paper_tflops, true_tflops

    # Video-LLaVA-7B's Vicuna-7B (conf/backbone/video_llava_7b.yaml: layers, hidden, ffn)
    full, pruned = paper_tflops(32, 4096, 11008, n_full=117.3 + 2056, n_pruned=117.3 + 308)
    print(f"{full:.3f} -> {pruned:.3f} TFLOPs ({100 * pruned / full:.2f} %)")   # 12.177 -> 2.188 (17.97 %)
    true = true_tflops(32, 4096, 11008, 2173, heads=32, vocab=32000)

A backbone's dimensions live in its ``conf/backbone/*.yaml`` (``BackboneConfig``: one source for the model
and its cost).

``paper_tflops`` is the number the paper's tables print and is what result rows call ``tflops``; it is
about half of the true cost (see its docstring). ``true_tflops`` counts what torch's ``FlopCounterMode``
counts, so it can be checked against a measured forward pass. Sequence lengths may be fractional:
the paper's tables use *average* prompt lengths per dataset.
"""
from __future__ import annotations

import math


def _fail(name: str, value: object, allowed: str) -> None:
    raise ValueError(f"{name}={value!r} is not allowed; expected {allowed}")


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= low
    if ok and high is not None:
        ok = value <= high  # type: ignore[operator]
    if not ok:
        _fail(name, value, f"an integer in [{low}, {high}]" if high is not None else f"an integer ≥ {low}")


def _check_length(name: str, value: object, high: float | None = None) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if ok and high is not None:
        ok = value <= high  # type: ignore[operator]
    if not ok:
        _fail(name, value, f"a number in (0, {high}]" if high is not None else "a finite number > 0")


def _layer_macs(n: float, hidden: int, ffn: int) -> float:
    """The paper's per-layer g(n) = 4·n·d² + 2·n²·d + 2·n·d·m."""
    return 4 * n * hidden**2 + 2 * n**2 * hidden + 2 * n * hidden * ffn


def paper_tflops(
    layers: int, hidden: int, ffn: int, n_full: float, n_pruned: float, K: int = 0
) -> tuple[float, float]:
    """(Full, Pruned(K)) in TFLOPs by the paper's formula (§4.1, SPEC §5).

    g(n) = 4·n·d² + 2·n²·d + 2·n·d·m per decoder layer, Full = T·g(n_full),
    Pruned(K) = K·g(n_full) + (T − K)·g(n_pruned), both divided by 1e12. n = text + visual tokens and
    may be fractional (average prompt lengths); K is the first layer that sees the shorter sequence
    (0: pruned before the decoder, as ReDiPrune, DivPrune and CDPruner are; T: no pruning).

    This is the DivPrune convention, kept so numbers are comparable with the paper: it counts
    multiply-adds (one per MAC, not two FLOPs), the q/k/v/o projections and QKᵀ/AV, and only two of
    LLaMA's three SwiGLU FFN matrices. It is therefore about half the true prefill FLOPs; use
    :func:`true_tflops` for a number comparable with a FLOP counter.
    """
    _check_int("layers", layers, 1)
    _check_int("hidden", hidden, 1)
    _check_int("ffn", ffn, 1)
    _check_length("n_full", n_full)
    _check_length("n_pruned", n_pruned, high=n_full)
    _check_int("K", K, 0, layers)
    g_full = _layer_macs(n_full, hidden, ffn)
    g_pruned = _layer_macs(n_pruned, hidden, ffn)
    return layers * g_full / 1e12, (K * g_full + (layers - K) * g_pruned) / 1e12


def true_tflops(
    layers: int,
    hidden: int,
    ffn: int,
    n: float,
    *,
    heads: int | None = None,
    kv_heads: int | None = None,
    gated: bool = True,
    vocab: int | None = None,
) -> float:
    """True prefill FLOPs of a LLaMA-style decoder on n tokens, in TFLOPs (2 FLOPs per multiply-add).

    Counted, per layer, as torch's ``FlopCounterMode`` counts matmuls (2·M·N·K each):
      - projections: q and o 2·n·d² each; k and v 2·n·d·d_kv each, d_kv = d·kv_heads/heads
        (d_kv = d for multi-head attention, i.e. when ``kv_heads`` is None);
      - attention: QKᵀ and A·V, 2·n²·d each, over the full n×n square (no causal halving, as the eager
        and SDPA paths compute it and as the counter reports it);
      - FFN: 2·n·d·m per matrix, three matrices when ``gated`` (SwiGLU gate/up/down), else two.
    Plus, when ``vocab`` is given, the lm_head 2·n·d·vocab over all n positions (a plain forward;
    ``generate`` keeps only the last position's logits, so pass None there). Not counted, as the counter
    does not count them either: embedding lookup, RMSNorm, rotary embeddings, softmax, SiLU, the gate
    product, residual adds. For MHA without lm_head this is 2·g(n) + 2·n·d·m per layer, g from
    :func:`paper_tflops` — roughly twice the paper's figure.
    """
    _check_int("layers", layers, 1)
    _check_int("hidden", hidden, 1)
    _check_int("ffn", ffn, 1)
    _check_length("n", n)
    if heads is not None:
        _check_int("heads", heads, 1)
    if kv_heads is None:
        kv_width = hidden
    else:
        if heads is None:
            _fail("heads", heads, "an integer ≥ 1 when kv_heads is given")
        _check_int("kv_heads", kv_heads, 1, heads)
        if heads % kv_heads or hidden % heads:
            _fail("kv_heads", kv_heads, f"a divisor of heads={heads}, with heads dividing hidden={hidden}")
        kv_width = hidden * kv_heads // heads
    if vocab is not None:
        _check_int("vocab", vocab, 1)
    projections = 2 * n * hidden * (2 * hidden + 2 * kv_width)
    attention = 2 * 2 * n**2 * hidden
    mlp = 2 * n * hidden * ffn * (3 if gated else 2)
    head = 0 if vocab is None else 2 * n * hidden * vocab
    return (layers * (projections + attention + mlp) + head) / 1e12


__all__ = ["paper_tflops", "true_tflops"]
