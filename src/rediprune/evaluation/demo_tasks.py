"""lmms-eval hooks and bundled documents of the demo benchmarks ``rediprune_demo_image``/``_video``.

Usage::

    python -m rediprune.evaluation.demo_tasks          # rewrite the bundled JSONL files from the seeded generator

The JSONL files under ``rediprune/evaluation/tasks/demo_*`` hold each held-out scene (objects, background
seed), question, answer and question type, written by :func:`write_docs` from ``rediprune.demo.world``
(``EVAL``/``EVAL_VIDEO`` seed streams, disjoint from training); a test checks they still match the
generator. Pictures are drawn at load. Scores: ``acc`` for every doc and ``acc_<type>`` only for docs of
that type, each aggregated by lmms-eval's ``mean``, so per-type accuracy lands in the task's metrics
(``metric/acc_color`` … in result rows) and per-sample scores in ``samples.jsonl``.
"""
from __future__ import annotations

import json
from pathlib import Path

from rediprune.demo.world import benchmark_docs, render_frames, render_scene, video_docs
from rediprune.evaluation.tiny_data import normalize_answer

TASKS = Path(__file__).resolve().parent / "tasks"
IMAGE_DOCS, VIDEO_DOCS = 500, 300


def doc_to_visual_image(doc: dict) -> list:
    return [render_scene(doc["objects"], doc["background"])]


def doc_to_visual_video(doc: dict) -> list:
    return render_frames(doc)


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}{kwargs.get('post_prompt', '')}"


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """``acc`` (first answer word equals the target) and the same score under ``acc_<type>``."""
    score = float(normalize_answer(results[0]) == doc["answer"])
    return {"acc": score, f"acc_{doc['type']}": score}


def write_docs(folder: Path = TASKS) -> list[Path]:
    """Write both benchmarks' JSONL files (compact, one doc per line) and return their paths."""
    written = []
    for name, docs in (("demo_image", benchmark_docs(IMAGE_DOCS)), ("demo_video", video_docs(VIDEO_DOCS))):
        path = folder / name / f"{name}.jsonl"
        path.write_text("".join(json.dumps(d, separators=(",", ":")) + "\n" for d in docs))
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_docs():
        print(f"wrote {p} ({p.stat().st_size} bytes)")
