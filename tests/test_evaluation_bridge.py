"""The lmms-eval bridge, metrics and bundled tasks, run through the REAL tiny LLaVA adapter.

The adapter is ``rediprune.models.load_adapter(BackboneConfig())`` (checkpoint "tiny": a real transformers
``LlavaForConditionalGeneration`` with seeded weights, built in milliseconds), loaded once per module;
``run_evaluation`` reconfigures it for every run. Its answers are deterministic but arbitrary, so the tests
assert what holds for the real model: sample and token counts (k = round(r·L) per frame, L from the model's
own vision config), that the answers lmms-eval scored are the ones the adapter generated for the same prompt
and picture, error accounting, and metric shapes. ``Observed`` only watches the real adapter (every call
goes through to it); ``FaultInjected`` additionally injects a fault for one question.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import yaml

from rediprune.evaluation import OUTPUTS, TASKS_DIR, ConfigError, identity, run_evaluation

TINY_IMAGE = "rediprune_tiny_image"


# ------------------------------------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def tiny_adapter():
    """The real tiny LLaVA adapter, shared by the module (each run_evaluation configures it anew)."""
    from rediprune.config.evaluation import BackboneConfig
    from rediprune.models import load_adapter

    return load_adapter(BackboneConfig())


class Observed:
    """The real adapter, watched: every attribute read, write and call goes to it; each ``generate`` is logged.

    Nothing is answered here: ``prepare``/``generate``/``prefill``/``configure`` run the real transformers
    model. ``calls`` holds one entry per generate attempt (questions, each sample's pixel tensor, the
    max_new_tokens asked for, and the real texts and SampleStats, or the error); ``events`` is an ordered
    log shared with other spies ("configure", "generate", "clean")."""

    _OWN = frozenset({"_adapter", "calls", "configured", "events"})

    def __init__(self, adapter, events: list | None = None) -> None:
        object.__setattr__(self, "_adapter", adapter)
        object.__setattr__(self, "calls", [])
        object.__setattr__(self, "configured", [])
        object.__setattr__(self, "events", [] if events is None else events)

    def __getattr__(self, name):
        return getattr(self._adapter, name)

    def __setattr__(self, name, value) -> None:
        if name in self._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self._adapter, name, value)  # e.g. efficiency's feature_cache switch acts on the real one

    def configure(self, settings) -> None:
        self.configured.append(settings)
        self.events.append("configure")
        self._adapter.configure(settings)

    def _record(self, batch, max_new_tokens) -> dict:
        pixels = [] if batch.pixel_values is None else list(batch.pixel_values.split(batch.frames))
        call = {"questions": list(batch.questions), "pixels": [p.clone() for p in pixels],
                "frames": list(batch.frames), "modality": batch.modality, "max_new_tokens": max_new_tokens}
        self.calls.append(call)
        self.events.append("generate")
        return call

    def generate(self, batch, max_new_tokens=16, **kwargs):
        call = self._record(batch, max_new_tokens)
        result = self._adapter.generate(batch, max_new_tokens, **kwargs)
        call["texts"], call["stats"] = list(result.texts), list(result.stats)
        return result

    def samples(self, max_new_tokens: int) -> list[tuple[str, torch.Tensor, str, object]]:
        """(question, pixels, real text, real stats) of every successful sample generated with that budget."""
        return [
            (q, p, t, s)
            for c in self.calls
            if "texts" in c and c["max_new_tokens"] == max_new_tokens
            for q, p, t, s in zip(c["questions"], c["pixels"], c["texts"], c["stats"])
        ]

    def generated(self, question: str, pixels: torch.Tensor, max_new_tokens: int):
        """The one (text, stats) the real adapter produced for this question and these pixels."""
        found = [(t, s) for q, p, t, s in self.samples(max_new_tokens) if q == question and torch.equal(p, pixels)]
        assert len(found) == 1, f"{question!r} was generated {len(found)} times with these pixels"
        return found[0]


class FaultInjected(Observed):
    """Injects a fault into the real component: ``generate`` raises RuntimeError when a question of the
    batch contains ``fail_on``; every other batch is delegated to the real adapter's generate."""

    _OWN = Observed._OWN | {"fail_on", "raised"}

    def __init__(self, adapter, fail_on: str) -> None:
        super().__init__(adapter)
        object.__setattr__(self, "fail_on", fail_on)
        object.__setattr__(self, "raised", [])

    def generate(self, batch, max_new_tokens=16, **kwargs):
        hit = [q for q in batch.questions if self.fail_on in q]
        if hit:
            call = self._record(batch, max_new_tokens)
            error = RuntimeError(f"injected fault on {hit[0]!r}")
            call["error"] = error
            self.raised.append(error)
            raise error
        return super().generate(batch, max_new_tokens, **kwargs)


def _docs(folder: str) -> list[dict]:
    return [json.loads(line) for line in (TASKS_DIR / folder / f"{folder}.jsonl").read_text().splitlines()]


def _prompt(folder: str, doc: dict) -> str:
    """The question as the bundled task words it (pre_prompt + question + post_prompt), read from its YAML."""
    text = (TASKS_DIR / folder / f"{folder}.yaml").read_text()
    kwargs = yaml.safe_load(text.replace("!function", ""))["lmms_eval_specific_kwargs"]["default"]
    return f"{kwargs['pre_prompt']}{doc['question']}{kwargs['post_prompt']}".strip()


def _tokens_per_frame(adapter) -> int:
    """L of the tiny LLaVA from its own vision config: one token per patch (CLS dropped)."""
    vision = adapter.model.config.vision_config
    return (vision.image_size // vision.patch_size) ** 2


def _k(ratio: float, length: int) -> int:
    return max(1, round(ratio * length))


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]


def _quick(run, timing: int = 0):
    run.measure.flops_samples = 0
    run.measure.timing_samples = timing
    return run


# ------------------------------------------------------------------------------------------------ bridge
def test_registered_by_name_and_survives_clean(compose_run, tiny_adapter, tmp_path, monkeypatch):
    from lmms_eval.api.model import lmms
    from lmms_eval.models import MODEL_REGISTRY_V2

    from rediprune.evaluation.lmms_model import RediPruneLMM
    from rediprune.evaluation.tiny_data import render_image
    from rediprune.flops import paper_tflops

    adapter = Observed(tiny_adapter)
    cleaned = []

    def clean(self):  # lmms-eval's own clean, watched: it deletes nn.Module attributes of the model object
        cleaned.append(self)
        adapter.events.append("clean")
        lmms.clean(self)

    monkeypatch.setattr(RediPruneLMM, "clean", clean)
    run = _quick(compose_run("dataset.batch_size=3"), timing=2)
    metrics = run_evaluation(run, adapter=adapter, output_dir=tmp_path, log=lambda _: None)

    assert MODEL_REGISTRY_V2.get_model_class("rediprune") is RediPruneLMM
    assert len(cleaned) == 1 and isinstance(cleaned[0], RediPruneLMM)  # lmms-eval built ours by name
    # the model object was cleaned, yet the real model still generates afterwards (timing runs on it)
    after_clean = adapter.events[adapter.events.index("clean"):]
    assert after_clean.count("generate") == run.measure.warmup + 2
    assert metrics["timing_samples"] == 2 and metrics["e2e_ms"] > 0 and metrics["prefill_ms"] > 0
    assert isinstance(tiny_adapter.model, torch.nn.Module)

    L = _tokens_per_frame(tiny_adapter)
    k = _k(run.ratio, L)
    assert adapter.configured[-1].pruner == "rediprune" and adapter.configured[-1].params.ratio == run.ratio
    assert metrics["samples"] == 8 and metrics["errors"] == 0 and "error_samples" not in metrics
    assert 0.0 <= metrics["metric/exact_match"] <= 1.0
    assert metrics["primary_metric"] == metrics["metric/exact_match"]
    assert metrics["frames_mean"] == 1
    assert metrics["visual_tokens_per_frame_before"] == L
    assert metrics["visual_tokens_per_frame_after"] == k
    text = metrics["text_tokens_mean"]
    full, pruned = paper_tflops(run.backbone.layers, run.backbone.hidden, run.backbone.ffn, text + L, text + k)
    assert (metrics["tflops_full"], metrics["tflops"]) == pytest.approx((full, pruned))
    assert 0 < metrics["tflops"] < metrics["tflops_full"]

    # evaluation calls: task budget (max_new_tokens 4), batches of at most 3, questions without placeholders
    task_calls = [c for c in adapter.calls if c["max_new_tokens"] == 4]
    assert sum(len(c["questions"]) for c in task_calls) == 8
    assert max(len(c["questions"]) for c in task_calls) == 3
    for c in task_calls:
        for q in c["questions"]:
            assert "<image>" not in q and q.endswith("answer with one word .")

    # every scored answer is the real adapter's answer for that doc's prompt and picture, cut at "\n"
    docs = {d["doc_id"]: d for d in _docs("tiny_image")}
    rows = _rows(tmp_path)
    assert sorted(r["doc_id"] for r in rows) == list(range(8))
    scores = []
    for row in rows:
        doc = docs[row["doc_id"]]
        pixels = tiny_adapter.processor.pixel_values([render_image(doc)])
        generated, stats = adapter.generated(_prompt("tiny_image", doc), pixels, 4)
        assert row["filtered_resps"] == [generated.split("\n", 1)[0].strip()]
        assert row["target"] == doc["answer"]
        assert row["stats"]["frames"] == stats.frames == 1
        assert row["stats"]["visual_tokens_before"] == stats.visual_tokens_before == L
        assert row["stats"]["visual_tokens_after"] == stats.visual_tokens_after == k
        assert row["stats"]["text_tokens"] == stats.text_tokens > 0
        scores.append(row["exact_match"])
    assert metrics["metric/exact_match"] == pytest.approx(sum(scores) / 8)
    assert metrics["text_tokens_mean"] == pytest.approx(sum(r["stats"]["text_tokens"] for r in rows) / 8)
    json.dumps(metrics)  # flat and serialisable
    # OUTPUTS declares exactly the numbers an evaluation returns besides its identity and task scores
    # (what search.objective / search.cost may name; the sweep's preflight checks against it)
    numbers = {k for k, v in metrics.items()
               if k not in identity(run) and not k.startswith("metric/") and not isinstance(v, str)}
    assert numbers == set(OUTPUTS)


def test_adapter_is_reconfigured_per_run(compose_run, tiny_adapter):
    adapter = Observed(tiny_adapter)
    L = _tokens_per_frame(tiny_adapter)
    unpruned = run_evaluation(_quick(compose_run("pruner=none", "dataset.limit=2")), adapter=adapter, log=print)
    assert adapter.configured[-1].pruner == "none"
    assert unpruned["visual_tokens_per_frame_after"] == unpruned["visual_tokens_per_frame_before"] == L
    assert unpruned["tflops"] == pytest.approx(unpruned["tflops_full"])
    half = run_evaluation(_quick(compose_run("ratio=0.5", "dataset.limit=2")), adapter=adapter, log=print)
    assert adapter.configured[-1].pruner == "rediprune" and adapter.configured[-1].params.ratio == 0.5
    assert half["samples"] == unpruned["samples"] == 2
    assert half["visual_tokens_per_frame_after"] == _k(0.5, L)
    assert half["tflops"] < unpruned["tflops"]


def test_video_frames_sampled_to_backbone_count(compose_run, tiny_adapter):
    from rediprune.evaluation.tasks.tiny_video.utils import FRAMES
    from rediprune.evaluation.tiny_data import render_frames

    adapter = Observed(tiny_adapter)
    run = _quick(compose_run("dataset=tiny_video", "ratio=0.25"))
    metrics = run_evaluation(run, adapter=adapter, log=print)
    count = run.backbone.num_frames
    assert FRAMES == 8 and count == 4  # the task draws more frames than the tiny backbone takes
    L = _tokens_per_frame(tiny_adapter)
    k = _k(0.25, L)
    assert metrics["samples"] == 6 and metrics["errors"] == 0
    assert metrics["frames_mean"] == count
    assert metrics["visual_tokens_per_frame_before"] == L
    assert metrics["visual_tokens_per_frame_after"] == k
    assert metrics["visual_tokens_after"] == count * k
    assert all(c["modality"] == "video" and c["frames"] == [count] * len(c["frames"]) for c in adapter.calls)
    # the frames the model saw are the task's frames at uniformly spaced indices 0, 2, 5, 7 of 8
    picked = [round(i * (FRAMES - 1) / (count - 1)) for i in range(count)]
    assert picked == [0, 2, 5, 7]
    for doc in _docs("tiny_video"):
        frames = render_frames(doc, FRAMES)
        pixels = tiny_adapter.processor.pixel_values([frames[i] for i in picked])
        _, stats = adapter.generated(_prompt("tiny_video", doc), pixels, 4)
        assert (stats.frames, stats.visual_tokens_before, stats.visual_tokens_after) == (count, count * L, count * k)


def test_errors_fail_the_run_by_default(compose_run, tiny_adapter):
    from rediprune.evaluation.lmms_model import GenerationError

    adapter = FaultInjected(tiny_adapter, fail_on="green")  # only doc 5 asks "is the shape green ?"
    with pytest.raises(GenerationError, match=rf"{TINY_IMAGE} doc 5: RuntimeError: injected fault") as info:
        run_evaluation(_quick(compose_run()), adapter=adapter, log=print)
    assert len(adapter.raised) == 1 and info.value.__cause__ is adapter.raised[0]
    assert "error" in adapter.calls[-1]  # the run stopped at the fault: nothing generated after it


def test_errors_counted_per_sample_when_asked(compose_run, tiny_adapter, tmp_path):
    from rediprune.evaluation.lmms_model import ERROR_ANSWER
    from rediprune.evaluation.tiny_data import render_image

    adapter = FaultInjected(tiny_adapter, fail_on="green")
    run = _quick(compose_run("dataset.on_error=count", "dataset.batch_size=2"))
    metrics = run_evaluation(run, adapter=adapter, output_dir=tmp_path, log=print)
    message = f"RuntimeError: {adapter.raised[0]}"
    assert metrics["samples"] == 8 and metrics["errors"] == 1
    assert json.loads(metrics["error_samples"]) == [{"task": TINY_IMAGE, "doc_id": 5, "error": message}]
    assert 0.0 <= metrics["primary_metric"] <= 1.0 and metrics["primary_metric"] == metrics["metric/exact_match"]
    assert metrics["visual_tokens_per_frame_after"] == _k(run.ratio, _tokens_per_frame(tiny_adapter))

    # the failing pair is retried one sample at a time: the batch-mate passes alone, doc 5 fails again
    first = next(i for i, c in enumerate(adapter.calls) if "error" in c)
    pair, retries = adapter.calls[first], adapter.calls[first + 1 : first + 3]
    assert len(pair["questions"]) == 2 and [len(c["questions"]) for c in retries] == [1, 1]
    assert sorted(q for c in retries for q in c["questions"]) == sorted(pair["questions"])
    for retry in retries:
        j = pair["questions"].index(retry["questions"][0])
        assert torch.equal(retry["pixels"][0], pair["pixels"][j])
        assert ("error" in retry) == ("green" in retry["questions"][0])
    assert len(adapter.raised) == 2

    rows = {r["doc_id"]: r for r in _rows(tmp_path)}
    assert rows[5]["filtered_resps"] == [ERROR_ANSWER] and rows[5]["exact_match"] == 0.0
    assert rows[5]["stats"]["error"] == message
    mate = next(c for c in retries if "texts" in c)
    [mate_doc] = [d for d in _docs("tiny_image")
                  if torch.equal(tiny_adapter.processor.pixel_values([render_image(d)]), mate["pixels"][0])]
    assert mate_doc["doc_id"] != 5 and mate["questions"] == [_prompt("tiny_image", mate_doc)]
    assert rows[mate_doc["doc_id"]]["filtered_resps"] == [mate["texts"][0].split("\n", 1)[0].strip()]
    assert all(r["stats"]["error"] is None for d, r in rows.items() if d != 5)


def test_backbone_dims_are_checked_against_the_loaded_model(compose_run):
    """The TFLOPs model's dims come from the backbone config; a config that disagrees with its checkpoint
    (a YAML that forgot ``layers`` and kept the schema's tiny default) is refused when the model loads."""
    from rediprune.evaluation import load_model

    with pytest.raises(ConfigError, match=r"backbone\.layers=3 is not allowed for tiny; expected 2 "):
        load_model(compose_run("backbone=tiny_llava", "backbone.layers=3"))


def test_unknown_task_fails_before_the_model(compose_run, tiny_adapter):
    adapter = Observed(tiny_adapter)
    with pytest.raises(ConfigError, match=r"dataset.task='rediprune_tiny_imag' .*close: rediprune_tiny_image"):
        run_evaluation(compose_run("dataset.task=rediprune_tiny_imag"), adapter=adapter)
    assert adapter.events == []  # neither configured nor run


def test_loglikelihood_is_refused_clearly(tiny_adapter):
    from lmms_eval.api.instance import Instance

    from rediprune.evaluation.lmms_model import EvalSession, RediPruneLMM, open_session

    adapter = Observed(tiny_adapter)
    request = Instance("loglikelihood", ("question", "answer"), 0, {"task": "egoschema_subset_mcppl", "doc_id": 0,
                                                                     "repeats": 1})
    with open_session(EvalSession(adapter)) as key:
        lm = RediPruneLMM(session=key)
        with pytest.raises(NotImplementedError, match="only generates text; task.s. egoschema_subset_mcppl"):
            lm.loglikelihood([request])
    assert adapter.events == []


def test_hf_home_follows_the_config(compose_run, tiny_adapter, tmp_path):
    import os

    run = _quick(compose_run(f"hf_home={tmp_path / 'hf'}", "dataset.limit=1"))
    metrics = run_evaluation(run, adapter=tiny_adapter, log=print)
    assert metrics["samples"] == 1
    assert os.environ["HF_HOME"] == str(tmp_path / "hf")
    assert (tmp_path / "hf" / "datasets").is_dir()


def _lmm(adapter, task_dict):
    from rediprune.evaluation.lmms_model import EvalSession, RediPruneLMM, open_session

    session = EvalSession(adapter, log=print)
    with open_session(session) as key:
        lm = RediPruneLMM(session=key)
    lm.task_dict = task_dict
    return lm


def _configure(tiny_adapter, ratio: float) -> None:
    from rediprune.models import PruningSettings
    from rediprune.pruning import PruneParams

    tiny_adapter.configure(PruningSettings(pruner="rediprune", params=PruneParams(ratio=ratio)))


def _direct(tiny_adapter, question: str, picture, max_new_tokens: int) -> str:
    """The real adapter's own answer, called without the bridge."""
    return tiny_adapter.generate(tiny_adapter.prepare([question], [[picture]], modality="image"), max_new_tokens).texts[0]


def test_generate_until_strips_placeholders_and_cuts_at_stop_strings(tiny_adapter):
    from lmms_eval.api.instance import Instance

    from rediprune.evaluation.tiny_data import render_image

    _configure(tiny_adapter, 0.5)
    doc = {"shape": "circle", "color": "red", "x": 0.5, "y": 0.5}
    question = "what color is the shape ? answer with one word ."
    raw = _direct(tiny_adapter, question, render_image(doc), 4)
    assert " " in raw  # four generated words: the stop string below really cuts something
    adapter = Observed(tiny_adapter)
    lm = _lmm(adapter, {"t": {"test": [doc]}})
    args = (f"<image>\n{question}", {"max_new_tokens": 4, "until": ["\n", " "]}, lambda d: [render_image(d)], 0,
            "t", "test")
    answers = lm.generate_until([Instance("generate_until", args, 0, {"task": "t", "doc_id": 0, "repeats": 1})])
    assert adapter.calls[0]["questions"] == [question]  # the placeholder never reaches the adapter
    assert adapter.calls[0]["texts"] == [raw]
    assert answers == [raw.split(" ", 1)[0]]
    record = lm.session.records[0]
    assert (record.frames, record.visual_tokens_after) == (1, _k(0.5, _tokens_per_frame(tiny_adapter)))


def test_multi_round_generation_follows_doc_to_text(tiny_adapter):
    from lmms_eval.api.instance import Instance

    from rediprune.evaluation.tiny_data import render_image

    _configure(tiny_adapter, 0.25)
    picture = render_image({"shape": "circle", "color": "red", "x": 0.5, "y": 0.5})
    first = "what color is the shape ?"
    seen = []

    def doc_to_text(doc, previous_output=None, round_idx=None, previous_round_info=None):
        seen.append(list(previous_output))
        terminal = round_idx == 2
        return [picture], f"{round_idx} what happens after {previous_output[-1]} ?", terminal, previous_output, None

    adapter = Observed(tiny_adapter)
    lm = _lmm(adapter, {"t": {"test": [{"id": 0}]}})
    args = (first, {"max_new_tokens": 3, "until": ["\n"]}, lambda d: [picture], doc_to_text, 0, "t", "test")
    request = Instance("generate_until_multi_round", args, 0, {"task": "t", "doc_id": 0, "repeats": 1})
    [rounds] = lm.generate_until_multi_round([request])

    assert len(rounds) == 2 and len(adapter.calls) == 2
    assert rounds == [c["texts"][0].split("\n", 1)[0].strip() for c in adapter.calls]
    second = f"1 what happens after {rounds[0]} ?"
    assert [c["questions"] for c in adapter.calls] == [[first], [second]]
    assert seen == [[rounds[0]], rounds]  # doc_to_text got the answers so far, round after round
    assert rounds[0] == _direct(tiny_adapter, first, picture, 3).split("\n", 1)[0].strip()
    assert len(lm.session.records) == 2


# ------------------------------------------------------------------------------------- no adapter involved
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

    from rediprune.config.evaluation import DatasetConfig
    from rediprune.evaluation.runner import _MANAGERS, task_manager

    root = TASKS_DIR.parents[3] / "conf" / "dataset"
    checked = 0
    for path in sorted(root.glob("*.yaml")):
        cfg = OmegaConf.load(path)  # states only what differs from the schema's defaults
        if cfg.get("include_path", DatasetConfig.include_path) is None:
            run = type("Run", (), {"dataset": type("D", (), {"include_path": None, "task": cfg.task})()})()
            task_manager(run)  # raises ConfigError for an unknown task
            checked += 1
    assert checked == 10
    assert "videochatgpt_temporal" in _MANAGERS[None].all_tasks
