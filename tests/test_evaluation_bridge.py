"""The lmms-eval bridge, metrics and bundled tasks, with a stand-in adapter (no model: fast)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from rediprune.evaluation import TASKS_DIR, ConfigError, run_evaluation
from rediprune.models.types import GenerationResult, SampleStats


class StubAdapter(torch.nn.Module):
    """Answers ``answer`` to everything, keeps round(r·L) of L tokens per frame, fails on ``fail_on``.

    An nn.Module on purpose: lmms-eval's ``lm.clean()`` deletes nn.Module attributes of its model object,
    and the adapter must survive it."""

    def __init__(self, L: int = 16, answer: str = "red", fail_on: str | None = None) -> None:
        super().__init__()
        self.L, self.answer, self.fail_on, self.ratio = L, answer, fail_on, 1.0
        self.last_stats: list[SampleStats] = []
        self.prompts: list[str] = []

    def configure(self, settings) -> None:
        self.ratio = 1.0 if settings.pruner == "none" else settings.params.ratio

    def prepare(self, questions, visuals, modality=None):
        assert modality in ("image", "video")
        return list(zip(questions, visuals))

    def _stats(self, q, frames) -> SampleStats:
        k = max(1, round(self.ratio * self.L))
        return SampleStats(len(frames), self.L, k, len(frames) * self.L, len(frames) * k, len(q.split()), 1e-4)

    def generate(self, batch, max_new_tokens):
        for q, _ in batch:
            self.prompts.append(q)
            if self.fail_on and self.fail_on in q:
                raise RuntimeError("boom")
        self.last_stats = [self._stats(q, v) for q, v in batch]
        return GenerationResult([f"{self.answer} .\nignored"] * len(batch), torch.zeros(len(batch), 1), self.last_stats)

    def prefill(self, batch):
        self.last_stats = [self._stats(q, v) for q, v in batch]


def _no_flops(run):
    run.measure.flops_samples = 0
    return run


def test_registered_by_name_and_survives_clean(compose_run, tmp_path):
    from lmms_eval.models import MODEL_REGISTRY_V2

    from rediprune.evaluation.lmms_model import RediPruneLMM

    adapter = StubAdapter()
    metrics = run_evaluation(_no_flops(compose_run("dataset.batch_size=3")), adapter=adapter, output_dir=tmp_path)
    assert MODEL_REGISTRY_V2.get_model_class("rediprune") is RediPruneLMM
    assert metrics["samples"] == 8 and metrics["errors"] == 0
    assert metrics["metric/exact_match"] == pytest.approx(1 / 8)  # "red" is the answer of doc 0 only
    assert metrics["primary_metric"] == metrics["metric/exact_match"]
    assert metrics["visual_tokens_per_frame_before"] == 16
    assert metrics["visual_tokens_per_frame_after"] == round(0.15 * 16)
    assert 0 < metrics["tflops"] < metrics["tflops_full"]
    assert metrics["timing_samples"] == 4 and metrics["e2e_ms"] > 0
    # prompts reach the adapter without placeholders, answers are cut at the task's stop string
    assert adapter.prompts[0].endswith("answer with one word .")
    rows = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and rows[0]["filtered_resps"] == ["red ."] and rows[0]["stats"]["frames"] == 1
    json.dumps(metrics)  # flat and serialisable


def test_video_frames_sampled_to_backbone_count(compose_run):
    metrics = run_evaluation(_no_flops(compose_run("dataset=tiny_video", "ratio=0.25")), adapter=StubAdapter())
    assert metrics["samples"] == 6
    assert metrics["frames_mean"] == 4  # tiny backbones take 4 of the 8 drawn frames
    assert metrics["visual_tokens_per_frame_after"] == 4
    assert metrics["visual_tokens_after"] == 16


def test_errors_fail_the_run_by_default(compose_run):
    from rediprune.evaluation.lmms_model import GenerationError

    with pytest.raises(GenerationError, match=r"doc 5: RuntimeError: boom") as info:
        run_evaluation(_no_flops(compose_run()), adapter=StubAdapter(fail_on="green"))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_errors_counted_per_sample_when_asked(compose_run):
    run = _no_flops(compose_run("dataset.on_error=count", "dataset.batch_size=2"))
    metrics = run_evaluation(run, adapter=StubAdapter(fail_on="green"))
    assert metrics["samples"] == 8 and metrics["errors"] == 1  # its batch-mate is retried alone and passes
    assert json.loads(metrics["error_samples"]) == [
        {"task": "rediprune_tiny_image", "doc_id": 5, "error": "RuntimeError: boom"}
    ]


def test_unknown_task_fails_before_the_model(compose_run):
    with pytest.raises(ConfigError, match=r"dataset.task='rediprune_tiny_imag' .*close: rediprune_tiny_image"):
        run_evaluation(compose_run("dataset.task=rediprune_tiny_imag"), adapter=None)


def test_loglikelihood_is_refused_clearly():
    from rediprune.evaluation.lmms_model import EvalSession, RediPruneLMM, open_session

    with open_session(EvalSession(StubAdapter())) as key:
        lm = RediPruneLMM(session=key)
        with pytest.raises(NotImplementedError, match="only generates text"):
            lm.loglikelihood([])


def test_hf_home_follows_the_config(compose_run, tmp_path):
    import os

    run = _no_flops(compose_run(f"hf_home={tmp_path / 'hf'}"))
    run_evaluation(run, adapter=StubAdapter())
    assert os.environ["HF_HOME"] == str(tmp_path / "hf")
    assert (tmp_path / "hf" / "datasets").is_dir()


def test_bundled_tasks_speak_the_tiny_vocabulary():
    from rediprune.evaluation.tiny_data import task_words
    from rediprune.models.tiny import tiny_vocabulary

    vocabulary = set(tiny_vocabulary())
    for folder in ("tiny_image", "tiny_video"):
        docs = [json.loads(line) for line in (TASKS_DIR / folder / f"{folder}.jsonl").read_text().splitlines()]
        assert 6 <= len(docs) <= 8
        text = (TASKS_DIR / folder / f"{folder}.yaml").read_text()
        prompt = yaml.safe_load(text.replace("!function", ""))["lmms_eval_specific_kwargs"]["default"]
        words = task_words(docs) | set(re.findall(r"[a-z]+|[^\sa-z]", prompt["post_prompt"]))
        assert words <= vocabulary, words - vocabulary
        assert sum(Path(p).stat().st_size for p in (TASKS_DIR / folder).iterdir() if p.is_file()) < 100_000


def test_tiny_pictures_are_deterministic():
    from rediprune.evaluation.tiny_data import render_frames, render_image

    spec = {"shape": "triangle", "color": "blue", "x": 0.5, "y": 0.5, "motion": "up"}
    assert render_image(spec).tobytes() == render_image(dict(spec)).tobytes()
    frames = render_frames(spec, 8)
    assert len(frames) == 8 and frames[0].tobytes() != frames[-1].tobytes()
    with pytest.raises(ValueError, match="color='purple' is not allowed"):
        render_image({**spec, "color": "purple"})


def test_task_metrics_flatten_groups_and_globs():
    from rediprune.evaluation.metrics import task_metrics

    results = {
        "results": {
            "videochatgpt": {"alias": "videochatgpt"},
            "videochatgpt_gen": {"gpt_eval_score_correctness,none": 2.0, "gpt_eval_score_context,none": 3.0,
                                 "gpt_eval_score_correctness_stderr,none": "N/A"},
            "videochatgpt_temporal": {"gpt_eval_score_temporal,none": 4.0, "submission,none": "file.json"},
        },
        "configs": {"videochatgpt_gen": {}, "videochatgpt_temporal": {}},
    }
    flat = task_metrics(results, "gpt_eval_score_*")
    assert flat["metric/videochatgpt_gen/gpt_eval_score_context"] == 3.0
    assert flat["primary_metric"] == pytest.approx(3.0)
    assert not any("stderr" in k or "submission" in k for k in flat)
    with pytest.raises(ValueError, match="dataset.primary_metric='wups' matches no metric"):
        task_metrics(results, "wups")


def test_analytic_tflops_use_measured_token_means():
    from rediprune.config.evaluation import BackboneConfig
    from rediprune.evaluation.metrics import analytic_tflops
    from rediprune.flops import paper_tflops

    seven_b = BackboneConfig(layers=32, hidden=4096, ffn=11008)
    tokens = {"text_tokens_mean": 117.3, "visual_tokens_before": 2056.0, "visual_tokens_after": 206.0}
    out = analytic_tflops(seven_b, tokens)
    full, pruned = paper_tflops(32, 4096, 11008, 117.3 + 2056, 117.3 + 206)
    assert (out["tflops_full"], out["tflops"]) == (full, pruned)
    assert out["tflops_ratio"] == pytest.approx(pruned / full)


def test_dataset_configs_name_real_lmms_eval_tasks():
    """Every paper benchmark config names a task lmms-eval 0.7.3 knows (its built-in index, no data)."""
    from omegaconf import OmegaConf

    from rediprune.evaluation.runner import _MANAGERS, task_manager

    root = TASKS_DIR.parents[3] / "conf" / "dataset"
    checked = 0
    for path in sorted(root.glob("*.yaml")):
        cfg = OmegaConf.load(path)
        if cfg.include_path is None:
            run = type("Run", (), {"dataset": type("D", (), {"include_path": None, "task": cfg.task})()})()
            task_manager(run)  # raises ConfigError for an unknown task
            checked += 1
    assert checked == 10
    assert "videochatgpt_temporal" in _MANAGERS[None].all_tasks


def test_multi_round_generation_follows_doc_to_text():
    from types import SimpleNamespace

    from rediprune.evaluation.lmms_model import EvalSession, RediPruneLMM, open_session
    from rediprune.evaluation.tiny_data import render_image

    picture = render_image({"shape": "circle", "color": "red", "x": 0.5, "y": 0.5})

    def doc_to_text(doc, previous_output=None, round_idx=None, previous_round_info=None):
        terminal = round_idx == 2
        return [picture], f"round {round_idx} after {previous_output[-1]}", terminal, previous_output, None

    adapter = StubAdapter(answer="blue")
    with open_session(EvalSession(adapter)) as key:
        lm = RediPruneLMM(session=key)
        lm.task_dict = {"t": {"test": [{"id": 0}]}}
        args = ("what color is the shape ?", {"max_new_tokens": 3, "until": ["\n"]}, lambda d: [picture],
                doc_to_text, 0, "t", "test")
        assert lm.generate_until_multi_round([SimpleNamespace(args=args)]) == [["blue .", "blue ."]]
    assert adapter.prompts == ["what color is the shape ?", "round 1 after blue ."]
    assert len(lm.session.records) == 2
