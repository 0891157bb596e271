"""Pruned evaluation of the tiny backbones on the bundled tasks, end to end through lmms-eval.

``run_evaluation`` hands lmms-eval's ``simple_evaluate`` the model *name* "rediprune", which lmms-eval
resolves through ``MODEL_REGISTRY_V2`` to our class, exactly as for any built-in model.

FLOPs: the count of ``torch.utils.flop_counter.FlopCounterMode`` (eager attention) of the decoder must
equal ``rediprune.flops.true_tflops`` at the measured sequence length within 0.1 %. Both count matmuls only,
2 FLOPs per multiply-add: q/k/v/o projections, QKᵀ and A·V over the full n×n square (2·n²·d each),
the three SwiGLU matrices. Neither counts RMSNorm, rotary embeddings, softmax, SiLU or residual adds
(O(n·d), which the counter does not see as matmuls), so agreement is exact up to float rounding here; the
0.1 % leaves room for small extra matmuls a future transformers might add. The paper's formula counts
multiply-adds (×½) and two of the three FFN matrices, and no lm_head: for multi-head attention
``true = 2·paper + T·2·n·d·m`` exactly, which the test checks with the same tolerance. The lm_head
(2·d·V on the last position) and the vision tower/projector are counted apart and excluded from both.
"""
from __future__ import annotations

import pytest

from rediprune.evaluation import load_model, run_evaluation
from rediprune.flops import paper_tflops

CASES = [  # backbone, task, docs, frames per sample, tokens per frame L
    ("tiny_llava", "tiny_image", 8, 1, 16),
    ("tiny_video_llava", "tiny_video", 6, 4, 17),  # Video-LLaVA keeps CLS for video frames
    ("tiny_llava_next_video", "tiny_video", 6, 4, 16),  # 64 patches pooled 2×2
]


@pytest.mark.parametrize("backbone,dataset,docs,frames,L", CASES)
def test_bundled_task_end_to_end(compose_run, tmp_path, backbone, dataset, docs, frames, L):
    run = compose_run(f"backbone={backbone}", f"dataset={dataset}", "ratio=0.25", "dataset.batch_size=2")
    m = run_evaluation(run, output_dir=tmp_path)
    k = max(1, round(0.25 * L))
    assert m["tasks"] == f"rediprune_{dataset}"
    assert m["samples"] == docs and m["errors"] == 0
    assert 0.0 <= m["metric/exact_match"] <= 1.0 and m["primary_metric"] == m["metric/exact_match"]
    assert m["frames_mean"] == frames
    assert m["visual_tokens_per_frame_before"] == L
    assert m["visual_tokens_per_frame_after"] == k  # per-frame budget k = round(r·L)
    assert m["visual_tokens_after"] == frames * k
    assert m["text_tokens_mean"] > 5
    assert 0 < m["tflops"] < m["tflops_full"] and m["tflops_ratio"] == pytest.approx(m["tflops"] / m["tflops_full"])
    for key in ("prefill_ms", "e2e_ms", "selection_ms", "peak_mem_mb"):
        assert m[key] is not None and m[key] >= 0
    assert m["e2e_ms"] >= m["prefill_ms"] * 0.5
    assert m["measured_vs_true"] == pytest.approx(1.0, rel=1e-3)
    assert (tmp_path / "samples.jsonl").read_text().count("\n") == docs


def test_measured_flops_match_true_and_paper_formula(compose_run):
    from rediprune.evaluation.efficiency import measure_flops
    from rediprune.evaluation.runner import pruning_settings
    from rediprune.evaluation.tiny_data import render_frames

    run = compose_run("backbone=tiny_video_llava", "dataset=tiny_video")
    adapter = load_model(run)
    frames = render_frames({"shape": "circle", "color": "red", "motion": "left"}, 4)
    inputs = [("where does the shape move ? answer with one word .", frames)]
    b = run.backbone
    counted = {}
    for pruner, ratio in (("none", 1.0), ("rediprune", 0.15)):
        run.pruner.name, run.ratio = type(run.pruner.name)(pruner), ratio
        adapter.configure(pruning_settings(run))
        m = measure_flops(adapter, inputs, samples=1, backbone=b, modality="video")
        n = m["measured_seq_len"]
        assert m["measured_tflops"] == pytest.approx(m["measured_tflops_true"], rel=1e-3)
        paper, _ = paper_tflops(b.layers, b.hidden, b.ffn, n, n)
        third_ffn_matrix = b.layers * 2 * n * b.hidden * b.ffn / 1e12
        assert m["measured_tflops"] == pytest.approx(2 * paper + third_ffn_matrix, rel=1e-3)
        assert m["measured_tflops_total"] > m["measured_tflops"] + m["measured_tflops_lm_head"]  # + vision
        counted[pruner] = m
    # 4 frames × 17 tokens → 4 × round(0.15·17) = 12: the decoder's count falls, the vision tower's does not
    assert counted["none"]["measured_seq_len"] - counted["rediprune"]["measured_seq_len"] == 4 * 17 - 4 * 3
    assert counted["rediprune"]["measured_tflops"] < 0.5 * counted["none"]["measured_tflops"]
