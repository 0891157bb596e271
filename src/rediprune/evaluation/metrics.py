"""Metrics of one pruned evaluation: task scores from lmms-eval, token counts, the paper's TFLOPs.

Usage::

    from rediprune.evaluation.metrics import task_metrics, token_metrics, analytic_tflops

    flat = task_metrics(results, primary="exact_match")   # {"metric/exact_match": 0.5, "primary_metric": 0.5}
    tokens = token_metrics(session.records)                # visual tokens per frame before/after, text tokens
    flops = analytic_tflops(run.backbone, tokens)         # {"tflops": …, "tflops_full": …, "tflops_ratio": …}

Everything returned is flat and JSON-serialisable (numbers, strings, None), so a result row, a W&B
summary and metrics.json share the same keys.
"""
from __future__ import annotations

import fnmatch
import math
from statistics import fmean
from typing import Any, Iterable

from rediprune.flops import paper_tflops


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def task_metrics(results: dict[str, Any], primary: str) -> dict[str, Any]:
    """Flatten lmms-eval's ``results["results"]`` for the leaf tasks into ``metric/<name>`` entries.

    A metric key ``name,filter`` becomes ``name`` (filter ``none``) or ``name,filter``; with more than one
    leaf task (a group such as videochatgpt) the key is ``metric/<task>/<name>``. Standard errors, aliases
    and non-numeric values (submission files) are left out. ``primary_metric`` is the mean of every leaf
    metric whose name matches ``primary`` (a name or a glob); a pattern that matches nothing raises
    ValueError listing the metrics there are.
    """
    per_task = results.get("results", {})
    leaves = [t for t in results.get("configs", per_task) if t in per_task] or list(per_task)
    flat: dict[str, Any] = {}
    matched: list[float] = []
    names: set[str] = set()
    for task in leaves:
        for key, value in per_task[task].items():
            if key == "alias" or "_stderr" in key:
                continue
            name, _, filt = key.partition(",")
            if filt and filt != "none":
                name = f"{name},{filt}"
            number = _number(value)
            if number is None:
                continue
            names.add(name)
            flat[f"metric/{name}" if len(leaves) == 1 else f"metric/{task}/{name}"] = number
            if fnmatch.fnmatchcase(name, primary):
                matched.append(number)
    if not matched:
        raise ValueError(
            f"dataset.primary_metric={primary!r} matches no metric of {', '.join(leaves) or 'the task'}; "
            f"expected one of {', '.join(sorted(names)) or '(none reported)'}"
        )
    flat["primary_metric"] = fmean(matched)
    flat["primary_metric_name"] = primary  # what primary_metric is (plot axes, reports)
    flat["tasks"] = ",".join(leaves)
    return flat


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return fmean(values) if values else None


def token_metrics(records: Iterable[Any]) -> dict[str, Any]:
    """Mean token counts per sample (and per frame) over the successful generations of an evaluation.

    ``records`` are :class:`rediprune.evaluation.lmms_model.SampleRecord`. Per-frame numbers are
    ``visual tokens / frames`` per sample, then averaged, so whole-input pruners (DivPrune), which keep
    different counts in different frames, report their mean keep per frame.
    """
    records = list(records)
    ok = [r for r in records if r.error is None and r.frames > 0]
    return {
        "samples": len(records),
        "errors": sum(r.error is not None for r in records),
        "frames_mean": _mean(r.frames for r in ok),
        "visual_tokens_per_frame_before": _mean(r.visual_tokens_before / r.frames for r in ok),
        "visual_tokens_per_frame_after": _mean(r.visual_tokens_after / r.frames for r in ok),
        "visual_tokens_before": _mean(r.visual_tokens_before for r in ok),
        "visual_tokens_after": _mean(r.visual_tokens_after for r in ok),
        "text_tokens_mean": _mean(r.text_tokens for r in ok),
        "selection_ms_mean": _mean(1e3 * r.selection_seconds for r in ok),
    }


def analytic_tflops(backbone: Any, tokens: dict[str, Any]) -> dict[str, Any]:
    """The paper's TFLOPs (SPEC §5) from the backbone's LLM dimensions and the measured mean token counts.

    n_full = text + visual tokens before pruning, n_pruned = text + visual tokens after (means per
    sample); pruning happens before the decoder (K = 0). Paper convention: multiply-adds and two of the
    three FFN matrices, about half the true FLOPs (see ``rediprune.flops``).
    """
    text, before, after = tokens.get("text_tokens_mean"), tokens.get("visual_tokens_before"), tokens.get("visual_tokens_after")
    if text is None or before is None or after is None:
        return {"tflops": None, "tflops_full": None, "tflops_ratio": None}
    full, pruned = paper_tflops(backbone.layers, backbone.hidden, backbone.ffn, text + before, text + after)
    return {"tflops": pruned, "tflops_full": full, "tflops_ratio": pruned / full}


__all__ = ["analytic_tflops", "task_metrics", "token_metrics"]
