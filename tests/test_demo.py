"""The demo world: seeded benchmarks, the training script (a few steps), shipped weights, query.source=clip_text."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from rediprune.demo import weights_dir
from rediprune.demo.world import (
    COLORS,
    EVAL,
    QUESTION_TYPES,
    SHAPES,
    TRAIN,
    benchmark_docs,
    make_question,
    render_scene,
    rng_for,
    scene_questions,
    video_docs,
)
from rediprune.evaluation.demo_tasks import IMAGE_DOCS, TASKS, VIDEO_DOCS, process_results
from rediprune.models.tiny import tiny_vocabulary


def _words(text: str) -> list[str]:
    import re

    return re.findall(r"[a-z]+|[?]", text.lower())


def test_bundled_docs_are_the_seeded_generator():
    for name, docs in (("demo_image", benchmark_docs(IMAGE_DOCS)), ("demo_video", video_docs(VIDEO_DOCS))):
        lines = (TASKS / name / f"{name}.jsonl").read_text().splitlines()
        assert [json.loads(line) for line in lines] == docs, f"{name}.jsonl is stale: python -m rediprune.evaluation.demo_tasks"


def test_benchmark_is_balanced_and_answerable():
    docs = benchmark_docs(IMAGE_DOCS)
    assert len(docs) >= 500 and Counter(d["type"] for d in docs) == dict.fromkeys(QUESTION_TYPES, IMAGE_DOCS // 5)
    vocab = set(tiny_vocabulary())
    for doc in docs:
        objects = doc["objects"]
        assert all(w in vocab for w in _words(doc["question"]) + [doc["answer"]]), doc["question"]
        assert len({o["cell"] for o in objects}) == len(objects)  # one object per cell (per visual token)
        shapes, colors = [o["shape"] for o in objects], [o["color"] for o in objects]
        if doc["type"] in ("color", "crowded"):
            shape = doc["question"].split()[-2]
            assert shapes.count(shape) == 1 and colors[shapes.index(shape)] == doc["answer"]
            assert (len(objects) >= 10) == (doc["type"] == "crowded")
        if doc["type"] == "exist" and doc["answer"] == "no":  # hard negatives: both attributes elsewhere
            color, shape = doc["question"].split()[3:5]
            assert color in colors and shape in shapes and (shape, color) not in zip(shapes, colors)
    # each type's answers are balanced
    color_answers = Counter(d["answer"] for d in docs if d["type"] == "color")
    assert set(color_answers) == set(COLORS) and max(color_answers.values()) - min(color_answers.values()) <= 1
    assert Counter(d["answer"] for d in docs if d["type"] == "exist") == {"yes": 50, "no": 50}


def test_scenes_are_seeded_and_streams_differ():
    a = make_question(rng_for(EVAL, 3), "count")
    assert a == make_question(rng_for(EVAL, 3), "count")
    assert a != make_question(rng_for(TRAIN, 3), "count")
    image = render_scene(a["objects"], a["background"])
    assert image.size == (96, 96) and image.tobytes() == render_scene(a["objects"], a["background"]).tobytes()
    for qtype, question, answer in scene_questions(a["objects"]):
        assert qtype in QUESTION_TYPES and answer in set(COLORS) | set(SHAPES) | {"yes", "no", "zero", "one", "two",
                                                                                  "three", "four"}


def test_process_results_scores_overall_and_per_type():
    doc = {"type": "count", "answer": "two"}
    assert process_results(doc, ["Two ."]) == {"acc": 1.0, "acc_count": 1.0}
    assert process_results(doc, ["three"]) == {"acc": 0.0, "acc_count": 0.0}


@pytest.fixture(scope="module")
def smoke_weights(tmp_path_factory) -> Path:
    """The training script for a few steps (CI never trains longer)."""
    from rediprune.demo.train import main

    out = tmp_path_factory.mktemp("demo")
    args = ["--clip-steps", "2", "--llava-steps", "2", "--batch", "4", "--heldout", "10", "--threads", "1"]
    assert main([*args, "--out", str(out / "a")]) == 0
    assert main([*args, "--out", str(out / "b")]) == 0
    return out


def test_training_script_writes_loadable_folders_and_manifest(smoke_weights):
    from rediprune.config.evaluation import BackboneConfig
    from rediprune.models import load_adapter
    from rediprune.models.types import PruningSettings
    from rediprune.pruning import PruneParams

    out = smoke_weights / "a"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"].startswith("python -m rediprune.demo.train --clip-steps 2")
    assert manifest["seed"] == 0 and set(manifest["heldout"]) >= {"acc", "acc_color", "acc_crowded", "questions"}
    assert {"llava/model.safetensors", "clip/model.safetensors", "llava/tokenizer.json"} <= set(manifest["files"])
    import hashlib

    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest
    adapter = load_adapter(BackboneConfig(name="demo", checkpoint=str(out / "llava"), clip_checkpoint=str(out / "clip"),
                                          hidden=128, ffn=256))
    assert adapter.model.model.vision_tower.config.image_size == 96
    image = render_scene(benchmark_docs(1)[0]["objects"], benchmark_docs(1)[0]["background"])
    batch = adapter.prepare(["what color is the cross ?"], [[image]])
    assert batch.tokens_per_frame == 64
    for source in ("llm", "clip_text"):
        adapter.configure(PruningSettings(pruner="rediprune", params=PruneParams(ratio=0.1), query_source=source))
        adapter.generate(batch, max_new_tokens=2)
        assert adapter.last_stats[0].visual_tokens_after == 6


def test_training_is_deterministic_for_a_seed(smoke_weights):
    a = json.loads((smoke_weights / "a" / "manifest.json").read_text())["files"]
    b = json.loads((smoke_weights / "b" / "manifest.json").read_text())["files"]
    assert a["llava/model.safetensors"] == b["llava/model.safetensors"]
    assert a["clip/model.safetensors"] == b["clip/model.safetensors"]


def test_clip_text_relevance_drives_the_first_pick():
    """With a relevance from another encoder, ReDiPrune's first pick is its argmax and α trades it off."""
    from rediprune.pruning.selection import rediprune_select

    torch.manual_seed(0)
    features = torch.randn(2, 16, 8)
    relevance = torch.zeros(2, 16)
    relevance[0, 5] = relevance[1, 11] = 1.0
    picked = rediprune_select(features, None, ratio=1 / 16, alpha=0.5, relevance=relevance)
    assert picked.tolist() == [[5], [11]]
    huge = rediprune_select(features, None, ratio=4 / 16, alpha=1e6, relevance=torch.arange(16.0).expand(2, 16))
    assert huge.tolist() == [[12, 13, 14, 15]] * 2
    with pytest.raises(ValueError, match="relevance.shape"):
        rediprune_select(features, None, ratio=0.25, relevance=torch.zeros(3, 16))


def test_query_source_is_checked(compose_run):
    run = compose_run("query.source=clip_text")
    assert run.query.source.value == "clip_text"
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="query.source=bert"):
        compose_run("query.source=bert")


def test_default_config_is_the_demo():
    from hydra import compose, initialize_config_dir

    from rediprune.config import load, register_configs

    register_configs()
    root = Path(__file__).resolve().parents[1]
    with initialize_config_dir(config_dir=str(root / "conf"), version_base="1.3"):
        run = load(compose("config"))
    assert run.backbone.name == "demo_image" and run.dataset.task == "rediprune_demo_image"
    assert Path(run.backbone.checkpoint) == weights_dir("image") / "llava"
    assert Path(run.backbone.clip_checkpoint) == weights_dir("image") / "clip"


@pytest.mark.parametrize("model", ["image", "video"])
def test_shipped_weights_match_their_manifest(model):
    import hashlib

    folder = weights_dir(model)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["command"].startswith("python -m rediprune.demo.train") and manifest["bytes"] <= 5_000_000
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == digest, rel


def test_shipped_image_model_answers_held_out_questions():
    """The shipped demo LLaVA, loaded as a plain from_pretrained folder, answers unseen questions."""
    from transformers import LlavaForConditionalGeneration

    from rediprune.demo.build import image_processor
    from rediprune.demo.train import Sequences, heldout_accuracy
    from rediprune.demo.world import benchmark_docs, render_scene
    from rediprune.models.tiny import build_tiny_tokenizer

    model = LlavaForConditionalGeneration.from_pretrained(weights_dir("image") / "llava").eval()
    sequences = Sequences(build_tiny_tokenizer(), "<image>", model.config.image_seq_length)
    docs = benchmark_docs(100)
    acc = heldout_accuracy(model, sequences, image_processor(), docs,
                           lambda d: [render_scene(d["objects"], d["background"])], "pixel_values")
    assert acc["acc"] >= 0.9, acc  # chance is about 0.3
