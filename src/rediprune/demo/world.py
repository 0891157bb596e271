"""The demo world: coloured shapes on a textured background, and one-word questions about them.

Usage::

    from rediprune.demo.world import benchmark_docs, render_scene, train_rng

    docs = benchmark_docs(500)                 # held-out questions (seed stream EVAL), balanced types
    image = render_scene(docs[0]["objects"], docs[0]["background"])   # 96×96 PIL image

Every picture is an 8×8 grid of 12-pixel cells (the demo CLIP's patches), so one object sits in one cell and
roughly in one visual token: pruning to k tokens can keep or lose an object. Scenes and questions are drawn
with numpy from explicit seeds; training (:data:`TRAIN`), validation during training (:data:`VALID`) and the
benchmark (:data:`EVAL`, :data:`EVAL_VIDEO`) use different ``SeedSequence`` streams, so held-out scenes are
never training scenes. Question types (``QUESTION_TYPES``), answers balanced within each type:

- ``color``: "what color is the {shape} ?" — the shape occurs once among 2–4 objects;
- ``shape``: "what shape is the {color} object ?" — the colour occurs once;
- ``count``: "how many {color} objects are there ?" — zero … four;
- ``exist``: "is there a {color} {shape} ?" — a "no" has hard negatives (the colour on another shape and the
  shape in another colour);
- ``crowded``: "what color is the {shape} ?" in a scene of 9–12 objects where the shape occurs once: the
  token that matters is one of many, so relevance to the question should matter most.

Videos (``video_docs``): 4 frames of a textured background; one object appears in one frame, or in two
consecutive frames (``shape``: "what shape appears ?", ``color``: "what color appears ?"): the answer lives
in one or two frames' worth of tokens. (With static distractor objects a tiny model stayed at chance —
``NOTES-demo.md``.) Words are all in the
tiny tokenizer's vocabulary (``rediprune.models.tiny.TINY_WORDS``).
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

SIZE = 96
CELL = 12
GRID = SIZE // CELL  # 8 → 64 patches
COLORS = {
    "red": (225, 35, 35),
    "green": (40, 190, 60),
    "blue": (45, 85, 235),
    "yellow": (240, 220, 40),
    "white": (245, 245, 245),
    "purple": (160, 60, 210),
}
SHAPES = ("circle", "square", "triangle", "cross")
COUNT_WORDS = ("zero", "one", "two", "three", "four")
QUESTION_TYPES = ("color", "shape", "count", "exist", "crowded")
VIDEO_TYPES = ("shape", "color")
VIDEO_FRAMES = 4

# SeedSequence streams: training, validation during training, image benchmark, video benchmark
TRAIN, VALID, EVAL, EVAL_VIDEO, TRAIN_VIDEO = 0, 1, 2, 3, 4


def rng_for(stream: int, *key: int) -> np.random.Generator:
    """Generator of one scene: ``stream`` (TRAIN, VALID, EVAL, …) and integer keys (step, index)."""
    return np.random.default_rng(np.random.SeedSequence([stream, *key]))


# ----------------------------------------------------------------------------- drawing
def _background(seed: int) -> np.ndarray:
    """Textured noisy grey background (H, W, 3) uint8: a random level, soft stripes and pixel noise."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(70, 130)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    angle, freq = rng.uniform(0, np.pi), rng.uniform(0.15, 0.5)
    stripes = 12 * np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy))
    noise = rng.normal(0, 10, (SIZE, SIZE, 3))
    tint = rng.uniform(-8, 8, 3)
    return np.clip(level + stripes[..., None] + noise + tint, 0, 255).astype(np.uint8)


def _draw(draw: ImageDraw.ImageDraw, shape: str, color: str, cx: float, cy: float, r: float = 5.0) -> None:
    fill = COLORS[color]
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    elif shape == "square":
        draw.rectangle((cx - r + 0.5, cy - r + 0.5, cx + r - 0.5, cy + r - 0.5), fill=fill)
    elif shape == "triangle":
        draw.polygon(((cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)), fill=fill)
    else:  # cross
        w = 1.5
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=fill)
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=fill)


def render_scene(objects: list[dict], background: int) -> Image.Image:
    """The picture of a scene: ``objects`` (dicts with shape, color, cell, dx, dy) on background ``seed``."""
    image = Image.fromarray(_background(background))
    draw = ImageDraw.Draw(image)
    for obj in objects:
        gy, gx = divmod(int(obj["cell"]), GRID)
        cx = gx * CELL + CELL / 2 - 0.5 + float(obj.get("dx", 0))
        cy = gy * CELL + CELL / 2 - 0.5 + float(obj.get("dy", 0))
        _draw(draw, obj["shape"], obj["color"], cx, cy)
    return image


def render_frames(doc: dict) -> list[Image.Image]:
    """The frames of a video doc: static ``objects`` plus ``event`` (an object) in the ``event_frames``."""
    frames = []
    for i in range(int(doc["frames"])):
        objects = list(doc["objects"]) + ([doc["event"]] if i in doc["event_frames"] else [])
        frames.append(render_scene(objects, int(doc["background"])))
    return frames


# ----------------------------------------------------------------------------- scenes
def _place(rng: np.random.Generator, attrs: list[tuple[str, str]]) -> list[dict]:
    """Objects with the given (shape, colour) pairs in distinct random cells, jittered by at most 1 px."""
    cells = rng.choice(GRID * GRID, size=len(attrs), replace=False)
    order = rng.permutation(len(attrs))
    return [
        {
            "shape": attrs[i][0],
            "color": attrs[i][1],
            "cell": int(cells[j]),
            "dx": int(rng.integers(-1, 2)),
            "dy": int(rng.integers(-1, 2)),
        }
        for j, i in enumerate(order)
    ]


def _pick(rng: np.random.Generator, options, exclude=()) -> str:
    allowed = [o for o in options if o not in exclude]
    return allowed[int(rng.integers(len(allowed)))]


def _others(rng: np.random.Generator, n: int, shapes=SHAPES, colors=tuple(COLORS), avoid=None) -> list[tuple[str, str]]:
    out = []
    while len(out) < n:
        pair = (_pick(rng, shapes), _pick(rng, colors))
        if pair != avoid:
            out.append(pair)
    return out


def make_question(rng: np.random.Generator, qtype: str, answer_index: int | None = None) -> dict:
    """A scene built for one question of ``qtype`` (answer chosen uniformly unless ``answer_index``)."""
    colors = tuple(COLORS)
    if qtype in ("color", "crowded"):
        color = colors[answer_index] if answer_index is not None else _pick(rng, colors)
        shape = _pick(rng, SHAPES)
        n = int(rng.integers(9, 13)) if qtype == "crowded" else int(rng.integers(1, 4))
        attrs = [(shape, color)] + _others(rng, n, shapes=[s for s in SHAPES if s != shape])
        question, answer = f"what color is the {shape} ?", color
    elif qtype == "shape":
        shape = SHAPES[answer_index] if answer_index is not None else _pick(rng, SHAPES)
        color = _pick(rng, colors)
        attrs = [(shape, color)] + _others(rng, int(rng.integers(1, 4)), colors=[c for c in colors if c != color])
        question, answer = f"what shape is the {color} object ?", shape
    elif qtype == "count":
        count = answer_index if answer_index is not None else int(rng.integers(len(COUNT_WORDS)))
        color = _pick(rng, colors)
        attrs = [(_pick(rng, SHAPES), color) for _ in range(count)]
        attrs += _others(rng, int(rng.integers(1, 3)), colors=[c for c in colors if c != color])
        question, answer = f"how many {color} objects are there ?", COUNT_WORDS[count]
    elif qtype == "exist":
        yes = bool(answer_index) if answer_index is not None else bool(rng.integers(2))
        shape, color = _pick(rng, SHAPES), _pick(rng, colors)
        if yes:
            attrs = [(shape, color)] + _others(rng, int(rng.integers(1, 4)))
        else:  # hard negatives: the colour on another shape, the shape in another colour
            attrs = [(_pick(rng, SHAPES, [shape]), color), (shape, _pick(rng, colors, [color]))]
            attrs += _others(rng, int(rng.integers(0, 3)), avoid=(shape, color))
        question, answer = f"is there a {color} {shape} ?", "yes" if yes else "no"
    else:
        raise ValueError(f"qtype={qtype!r} is not allowed; expected one of {', '.join(QUESTION_TYPES)}")
    return {
        "type": qtype,
        "question": question,
        "answer": answer,
        "objects": _place(rng, attrs),
        "background": int(rng.integers(2**31)),
    }


def scene_questions(objects: list[dict]) -> list[tuple[str, str, str]]:
    """Every answerable (type, question, answer) about a scene, used for extra training turns."""
    shapes = [o["shape"] for o in objects]
    colors = [o["color"] for o in objects]
    pairs = {(o["shape"], o["color"]) for o in objects}
    out = []
    for s in SHAPES:
        if shapes.count(s) == 1:
            out.append(("color", f"what color is the {s} ?", colors[shapes.index(s)]))
    for c in COLORS:
        if colors.count(c) == 1:
            out.append(("shape", f"what shape is the {c} object ?", shapes[colors.index(c)]))
        if colors.count(c) < len(COUNT_WORDS):
            out.append(("count", f"how many {c} objects are there ?", COUNT_WORDS[colors.count(c)]))
        for s in SHAPES:
            out.append(("exist", f"is there a {c} {s} ?", "yes" if (s, c) in pairs else "no"))
    return out


def make_video(rng: np.random.Generator, qtype: str | None = None, answer_index: int | None = None,
               frames: int = VIDEO_FRAMES) -> dict:
    """A video doc: one object in one frame (or two consecutive frames) of ``frames``; asks its shape or colour."""
    qtype = qtype or VIDEO_TYPES[int(rng.integers(len(VIDEO_TYPES)))]
    if qtype not in VIDEO_TYPES:
        raise ValueError(f"qtype={qtype!r} is not allowed; expected one of {', '.join(VIDEO_TYPES)}")
    colors = tuple(COLORS)
    shape, color = _pick(rng, SHAPES), _pick(rng, colors)
    if answer_index is not None:
        shape, color = (SHAPES[answer_index], color) if qtype == "shape" else (shape, colors[answer_index])
    [event] = _place(rng, [(shape, color)])
    span = int(rng.integers(1, 3))  # frames the object is visible in
    first = int(rng.integers(frames - span + 1))
    return {
        "type": qtype,
        "question": f"what {qtype} appears ?",
        "answer": shape if qtype == "shape" else color,
        "objects": [],
        "event": event,
        "event_frames": list(range(first, first + span)),
        "frames": frames,
        "background": int(rng.integers(2**31)),
    }


def benchmark_docs(n: int = 600, stream: int = EVAL) -> list[dict]:
    """``n`` held-out image questions: types in turn, each type's answers in turn (balanced), seeded."""
    docs = []
    counters = dict.fromkeys(QUESTION_TYPES, 0)
    sizes = {"color": len(COLORS), "crowded": len(COLORS), "shape": len(SHAPES), "count": len(COUNT_WORDS), "exist": 2}
    for i in range(n):
        qtype = QUESTION_TYPES[i % len(QUESTION_TYPES)]
        answer_index = counters[qtype] % sizes[qtype]
        counters[qtype] += 1
        doc = make_question(rng_for(stream, i), qtype, answer_index)
        docs.append({"doc_id": i, **doc})
    return docs


def video_docs(n: int = 300, stream: int = EVAL_VIDEO) -> list[dict]:
    """``n`` held-out video questions: types in turn, each type's answers in turn (balanced), seeded."""
    docs = []
    for i in range(n):
        qtype = VIDEO_TYPES[i % len(VIDEO_TYPES)]
        size = len(SHAPES) if qtype == "shape" else len(COLORS)
        docs.append({"doc_id": i, **make_video(rng_for(stream, i), qtype, (i // len(VIDEO_TYPES)) % size)})
    return docs
