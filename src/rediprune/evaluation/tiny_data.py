"""Data of the bundled tiny tasks: coloured shapes drawn with PIL from a few words of JSON.

Usage::

    from rediprune.evaluation.tiny_data import render_image, render_frames, exact_match

    image = render_image({"shape": "circle", "color": "red", "x": 0.5, "y": 0.5})      # 64×64 RGB
    frames = render_frames({"shape": "square", "color": "blue", "motion": "right"}, 8)
    exact_match("red .", "red")                                                         # 1.0

Each task's JSONL (``tasks/tiny_*/``) holds only the scene description, question and answer; pictures are
drawn here at load, deterministically (no randomness, no fonts), so the tasks need no downloads and no
binary files. Both tasks' ``utils.py`` also take their ``doc_to_text`` and ``process_results`` from here. Questions and answers use only words the tiny backbones' tokenizer knows
(``rediprune.models.tiny.tiny_vocabulary()``; a test checks it).
"""
from __future__ import annotations

import re

from PIL import Image, ImageDraw

SIZE = 64  # pixels; the tiny CLIP processor resizes to its own image size
COLORS = {
    "red": (220, 30, 30),
    "green": (30, 180, 40),
    "blue": (30, 60, 220),
    "yellow": (235, 215, 30),
}
SHAPES = ("circle", "square", "triangle")
MOTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
BACKGROUND = (40, 40, 40)
RADIUS = 0.2  # shape half-size as a fraction of the picture


def _check(spec: dict) -> None:
    if spec.get("shape") not in SHAPES:
        raise ValueError(f"shape={spec.get('shape')!r} is not allowed; expected one of {', '.join(SHAPES)}")
    if spec.get("color") not in COLORS:
        raise ValueError(f"color={spec.get('color')!r} is not allowed; expected one of {', '.join(COLORS)}")


def draw_shape(shape: str, color: str, x: float, y: float, size: int = SIZE) -> Image.Image:
    """One picture: a ``color`` ``shape`` centred at (x, y) (fractions of the side) on a dark background."""
    _check({"shape": shape, "color": color})
    image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    cx, cy, r = x * size, y * size, RADIUS * size
    fill = COLORS[color]
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        draw.polygon(((cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)), fill=fill)
    return image


def render_image(spec: dict) -> Image.Image:
    """The picture of an image doc: keys shape, color, x, y."""
    _check(spec)
    return draw_shape(spec["shape"], spec["color"], float(spec["x"]), float(spec["y"]))


def render_frames(spec: dict, frames: int) -> list[Image.Image]:
    """The frames of a video doc: the shape moves across the picture in direction ``motion``."""
    _check(spec)
    if spec.get("motion") not in MOTIONS:
        raise ValueError(f"motion={spec.get('motion')!r} is not allowed; expected one of {', '.join(MOTIONS)}")
    dx, dy = MOTIONS[spec["motion"]]
    out = []
    for i in range(frames):
        t = i / max(frames - 1, 1) - 0.5  # -0.5 … 0.5
        out.append(draw_shape(spec["shape"], spec["color"], 0.5 + 0.5 * dx * t, 0.5 + 0.5 * dy * t))
    return out


def normalize_answer(text: str) -> str:
    """First word of an answer, lower-cased, without punctuation ("" if there is none)."""
    words = re.findall(r"[a-z]+", text.lower())
    return words[0] if words else ""


def exact_match(prediction: str, target: str) -> float:
    """1.0 when the first word of ``prediction`` is ``target``."""
    return float(normalize_answer(prediction) == target.strip().lower())


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """lmms-eval hook of both bundled tasks: pre_prompt + question + post_prompt."""
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}{kwargs.get('post_prompt', '')}"


def process_results(doc: dict, results: list[str]) -> dict[str, float]:
    """lmms-eval hook of both bundled tasks: exact match of the first answer word."""
    return {"exact_match": exact_match(results[0], doc["answer"])}


def task_words(docs: list[dict]) -> set[str]:
    """Every word the tasks show the model or expect from it (for the vocabulary check)."""
    words: set[str] = set()
    for doc in docs:
        for key in ("question", "answer"):
            words.update(re.findall(r"[a-z]+", str(doc[key]).lower()))
    return words
