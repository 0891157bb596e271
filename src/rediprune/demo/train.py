"""Train the demo backbones on this CPU, deterministically for a seed, and write their manifest.

Usage::

    python -m rediprune.demo.train --threads 1          # image model → src/rediprune/demo/weights/image
    python -m rediprune.demo.train --model video --threads 1 --batch 32 --llava-steps 800 --heldout 300
                                                        # video model (needs the image model's CLIP)

The shipped weights' exact commands are in their ``manifest.json``. One thread: on 2 shared cores a
2-thread run slowed tenfold (OpenMP threads waiting on each other whenever another job took a core).
    python -m rediprune.demo.train --clip-steps 5 --llava-steps 5 --out /tmp/demo   # a smoke run

Two stages, as real LLaVA is built (``NOTES-demo.md`` has the calibration this follows):

1. **CLIP** (image model only): the vision tower and a text tower trained together with a sigmoid
   contrastive loss (SigLIP's) between *patch* embeddings and texts (region–text pairs, as in region-level
   CLIP pretraining): a (patch, question) pair is positive when the patch shows the object the question
   names. So each patch embedding — exactly what CDPruner's relevance and ``query.source=clip_text`` read
   — is aligned with the words naming its object. Measured here: an image-level loss (max over patches,
   as FILIP) learned colour but not shape in 600 steps (balanced accuracy 0.59 on shape-only texts), and
   the LLaVA stage on those features stayed at 35 % held-out.
2. **LLaVA**: vision tower frozen; projector and LLM trained on multi-turn question–answer sequences (the
   first turn in exactly the evaluation prompt), loss on answer tokens only, no token dropout, so pruning
   is out of distribution for the demo model as it is for real ones.

The video model reuses the image model's CLIP tower (frozen) in both Video-LLaVA towers and trains its LLM
on 4-frame clips. Output: ``llava/`` (model, tokenizer, image processor: a plain ``from_pretrained``
folder), ``clip/`` (CLIPModel + tokenizer, for ``backbone.clip_checkpoint``) and ``manifest.json`` (sha256 of
every file, the command, seed, steps, seconds, held-out accuracy per question type).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from rediprune.demo import weights_dir
from rediprune.demo.build import build_clip, build_llava, build_video_llava, image_processor
from rediprune.demo.world import (
    COLORS,
    GRID,
    QUESTION_TYPES,
    SHAPES,
    TRAIN,
    TRAIN_VIDEO,
    VALID,
    VIDEO_FRAMES,
    benchmark_docs,
    make_question,
    make_video,
    render_frames,
    render_scene,
    rng_for,
    scene_questions,
    video_docs,
)
from rediprune.models.tiny import build_tiny_tokenizer

PROMPT = "USER: {visual}\n{question} ASSISTANT:"  # the adapters' prompt (rediprune.models.base)
NEXT_TURN = " USER: {question} ASSISTANT:"
# CLIP stage texts: every question the benchmark asks, with the (shape, colour) it names (None: any)
CLIP_TEXTS: list[tuple[str, str | None, str | None]] = (
    [(f"what color is the {s} ?", s, None) for s in SHAPES]
    + [(f"what shape is the {c} object ?", None, c) for c in COLORS]
    + [(f"how many {c} objects are there ?", None, c) for c in COLORS]
    + [(f"is there a {c} {s} ?", s, c) for c in COLORS for s in SHAPES]
)


# ----------------------------------------------------------------------------- stage 1: CLIP
def _clip_labels(objects_per_image: list[list[dict]]) -> torch.Tensor:
    """(B, P, T) targets: patch p of image b shows an object that text t names (one object per patch)."""
    labels = torch.zeros(len(objects_per_image), GRID * GRID, len(CLIP_TEXTS))
    for b, objects in enumerate(objects_per_image):
        for o in objects:
            labels[b, int(o["cell"])] = torch.tensor(
                [float((s is None or o["shape"] == s) and (c is None or o["color"] == c)) for _, s, c in CLIP_TEXTS]
            )
    return labels


def clip_pair_logits(clip, pixels: torch.Tensor, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
    """(B, P, T) patch–text scores: cosine(patch embedding, text embedding) times CLIP's logit scale."""
    patches = clip.vision_model(pixel_values=pixels).last_hidden_state[:, 1:]
    patches = F.normalize(clip.visual_projection(clip.vision_model.post_layernorm(patches)), dim=-1)
    text = clip.text_model(input_ids=text_ids, attention_mask=text_mask).pooler_output
    text = F.normalize(clip.text_projection(text), dim=-1)
    return torch.einsum("bpe,te->bpt", patches, text) * clip.logit_scale.exp()


# groups of CLIP_TEXTS among which exactly one names a given object (softmax contrast within a group)
TEXT_GROUPS = (
    slice(0, len(SHAPES)),
    slice(len(SHAPES), len(SHAPES) + len(COLORS)),
    slice(len(SHAPES) + len(COLORS), len(SHAPES) + 2 * len(COLORS)),
    slice(len(SHAPES) + 2 * len(COLORS), len(CLIP_TEXTS)),
)


def clip_loss(logits: torch.Tensor, bias: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sigmoid loss on every (patch, text) pair (SigLIP's) plus CLIP's softmax contrast, per object patch,
    among the texts of each group (the patch's own shape among the four shapes, …): the softmax term gives
    shape, a few pixels' difference, a strong gradient; the sigmoid term keeps background patches away
    from every text."""
    loss = F.binary_cross_entropy_with_logits(logits + bias, labels)
    objects = labels.amax(dim=2) > 0  # (B, P) patches showing an object
    flat_logits, flat_labels = logits[objects], labels[objects]  # (N, T)
    for group in TEXT_GROUPS:
        loss = loss + F.cross_entropy(flat_logits[:, group], flat_labels[:, group].argmax(dim=1)) / len(TEXT_GROUPS)
    return loss


def _clip_batch(step: int, batch: int, stream: int, processor) -> tuple[torch.Tensor, list[list[dict]]]:
    scenes = []
    for i in range(batch):
        rng = rng_for(stream, 1, step, i)
        scenes.append(make_question(rng, QUESTION_TYPES[int(rng.integers(len(QUESTION_TYPES)))]))
    pixels = processor(images=[render_scene(s["objects"], s["background"]) for s in scenes], return_tensors="pt")
    return pixels["pixel_values"], [s["objects"] for s in scenes]


def train_clip(clip, tokenizer, processor, steps: int, batch: int, lr: float) -> dict:
    enc = tokenizer([t for t, _, _ in CLIP_TEXTS], padding="max_length", max_length=16, return_tensors="pt")
    # right-padded for the text tower (pooled output reads the first </s>)
    ids = torch.stack([_right(row, m, tokenizer.pad_token_id) for row, m in zip(enc["input_ids"], enc["attention_mask"])])
    mask = (ids != tokenizer.pad_token_id).long()
    bias = torch.nn.Parameter(torch.tensor(-5.0))
    with torch.no_grad():
        clip.logit_scale.fill_(math.log(10.0))
    opt = torch.optim.AdamW(list(clip.parameters()) + [bias], lr=lr, weight_decay=0.0)
    sched = _schedule(opt, steps)
    clip.train()
    bar = tqdm(range(steps), desc="clip", unit="step", mininterval=5)
    for step in bar:
        pixels, objects = _clip_batch(step, batch, TRAIN, processor)
        logits = clip_pair_logits(clip, pixels, ids, mask)
        loss = clip_loss(logits, bias, _clip_labels(objects))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    clip.eval()
    with torch.no_grad():
        pixels, objects = _clip_batch(0, 128, VALID, processor)
        logits = clip_pair_logits(clip, pixels, ids, mask) + bias
        labels = _clip_labels(objects)
        hit = (logits > 0).float() == labels
        balanced = 0.5 * (hit[labels == 1].float().mean() + hit[labels == 0].float().mean())
    return {"steps": steps, "patch_text_balanced_accuracy": round(float(balanced), 4)}


def _right(row: torch.Tensor, mask: torch.Tensor, pad: int) -> torch.Tensor:
    kept = row[mask.bool()]
    return torch.cat([kept, torch.full((row.numel() - kept.numel(),), pad, dtype=row.dtype)])


def _schedule(opt, steps: int, warmup_fraction: float = 0.05):
    warmup = max(1, int(steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


# ----------------------------------------------------------------------------- stage 2: LLaVA
class Sequences:
    """Token ids and answer-only labels of multi-turn conversations in the adapters' prompt format."""

    def __init__(self, tokenizer, placeholder: str, run: int) -> None:
        self.tok = tokenizer
        self.placeholder = placeholder
        self.pid = tokenizer.convert_tokens_to_ids(placeholder)
        self.run = run  # placeholder ids per visual input (64 per image; frames × 65 per video)
        self.eos = tokenizer.eos_token_id

    def encode(self, turns: list[tuple[str, str]]) -> tuple[list[int], list[int]]:
        ids: list[int] = []
        labels: list[int] = []
        for t, (question, answer) in enumerate(turns):
            if t == 0:
                prompt = self.tok(PROMPT.format(visual=self.placeholder, question=question))["input_ids"]
                expanded = []
                for token in prompt:
                    expanded.extend([token] * self.run if token == self.pid else [token])
                prompt = expanded
            else:
                prompt = self.tok(NEXT_TURN.format(question=question), add_special_tokens=False)["input_ids"]
            target = self.tok(answer, add_special_tokens=False)["input_ids"] + [self.eos]
            ids += prompt + target
            labels += [-100] * len(prompt) + target
        return ids, labels

    def batch(self, rows: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(r[0]) for r in rows)
        pad = self.tok.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for b, (i, l) in enumerate(rows):
            ids[b, : len(i)] = torch.tensor(i)
            labels[b, : len(l)] = torch.tensor(l)
            mask[b, : len(i)] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _image_sample(step: int, i: int, stream: int, turns: int) -> tuple[list, list[tuple[str, str]]]:
    """One training picture and its turns: the first in a benchmark question type; each extra turn picks a
    question type uniformly among those the scene can answer, and "yes"/"no" equally for existence.
    (Drawing extra turns uniformly from every answerable question made ~70 % of them "is there a …" with
    mostly "no": the loss fell on priors while colour and shape retrieval barely trained.)"""
    rng = rng_for(stream, 2, step, i)
    doc = make_question(rng, QUESTION_TYPES[int(rng.integers(len(QUESTION_TYPES)))])
    by_type: dict[str, list[tuple[str, str]]] = {}
    for qtype, question, answer in scene_questions(doc["objects"]):
        by_type.setdefault(qtype, []).append((question, answer))
    types = list(by_type)
    qa = [(doc["question"], doc["answer"])]
    for _ in range(turns - 1):
        options = by_type[types[int(rng.integers(len(types)))]]
        if options[0][0].startswith("is there"):
            wanted = "yes" if rng.integers(2) else "no"
            options = [o for o in options if o[1] == wanted] or options
        qa.append(options[int(rng.integers(len(options)))])
    return [render_scene(doc["objects"], doc["background"])], qa


def _video_sample(step: int, i: int, stream: int, turns: int) -> tuple[list, list[tuple[str, str]]]:
    rng = rng_for(stream, 2, step, i)
    doc = make_video(rng)
    other = "color" if doc["type"] == "shape" else "shape"  # second turn: the other attribute of the object
    second = (f"what {other} appears ?", doc["event"][other])
    return render_frames(doc), [(doc["question"], doc["answer"]), second][:turns]


def train_llava(model, sequences: Sequences, processor, sample, steps: int, batch: int, lr: float, turns: int,
                pixel_key: str, stream: int, offset: int = 0, stop_after: int | None = None, checkpoint=None,
                every: int = 0) -> dict:
    """The LLaVA stage: ``steps`` of a warm-up + cosine schedule; ``stop_after`` ends it early (the same
    weights a full run has at that step); ``checkpoint(done)`` is called every ``every`` steps."""
    trainable = [p for n, p in model.named_parameters() if "tower" not in n]
    for n, p in model.named_parameters():
        p.requires_grad_("tower" not in n)
    opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.01)
    sched = _schedule(opt, steps)
    model.train()
    bar = tqdm(range(steps if stop_after is None else min(steps, stop_after)), desc="llava", unit="step",
               mininterval=5)
    for step in bar:
        if every and checkpoint is not None and step and step % every == 0:
            model.eval()
            checkpoint(step)
            model.train()
        frames, rows = [], []
        for i in range(batch):
            f, qa = sample(offset + step, i, stream, turns)  # offset: a continued run sees new data
            frames.append(f)
            rows.append(sequences.encode(qa))
        inputs = sequences.batch(rows)
        pixels = processor(images=[x for f in frames for x in f], return_tensors="pt")["pixel_values"]
        if pixel_key == "pixel_values_videos":
            pixels = pixels.view(batch, len(frames[0]), *pixels.shape[1:])
        loss = model(**inputs, **{pixel_key: pixels}).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    model.eval()
    done = steps if stop_after is None else min(steps, stop_after)
    return {"steps": steps, "completed": done, "final_loss": round(float(loss.item()), 4)}


@torch.no_grad()
def heldout_accuracy(model, sequences: Sequences, processor, docs: list[dict], visuals, pixel_key: str) -> dict:
    """Greedy first-answer-token accuracy on held-out ``docs``, overall and per question type."""
    hits: dict[str, list[float]] = {}
    for lo in range(0, len(docs), 50):
        chunk = docs[lo : lo + 50]
        rows = [sequences.encode([(d["question"], d["answer"])]) for d in chunk]
        prompts = [r[0][: r[1].index(next(x for x in r[1] if x != -100))] for r in rows]
        width = max(len(p) for p in prompts)
        pad = sequences.tok.pad_token_id
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        frames = [visuals(d) for d in chunk]
        pixels = processor(images=[x for f in frames for x in f], return_tensors="pt")["pixel_values"]
        if pixel_key == "pixel_values_videos":
            pixels = pixels.view(len(chunk), len(frames[0]), *pixels.shape[1:])
        logits = model(input_ids=ids, attention_mask=mask, **{pixel_key: pixels}, logits_to_keep=1).logits[:, -1]
        predicted = logits.argmax(-1).tolist()
        for d, p in zip(chunk, predicted):
            target = sequences.tok(d["answer"], add_special_tokens=False)["input_ids"][0]
            hits.setdefault(d["type"], []).append(float(p == target))
    every = [h for v in hits.values() for h in v]
    out = {"acc": round(float(np.mean(every)), 4)}
    out.update({f"acc_{k}": round(float(np.mean(v)), 4) for k, v in sorted(hits.items())})
    return out


# ----------------------------------------------------------------------------- files
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(out: Path, record: dict) -> Path:
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != "manifest.json")
    record["files"] = {str(p.relative_to(out)): _sha256(p) for p in files}
    record["bytes"] = sum(p.stat().st_size for p in files)
    path = out / "manifest.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def _save(model, tokenizer, processor, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if processor is not None:
        processor.save_pretrained(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rediprune.demo.train", description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("image", "video"), default="image")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the package's weights/<model>)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clip-steps", type=int, default=300)
    parser.add_argument("--clip-lr", type=float, default=3e-3)
    parser.add_argument("--llava-steps", type=int, default=1600)
    parser.add_argument("--llava-lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--turns", type=int, default=4, help="question–answer turns per training picture")
    parser.add_argument("--heldout", type=int, default=500, help="held-out benchmark questions scored at the end")
    parser.add_argument("--clip-from", type=Path, default=None, help="video: the image model's clip/ folder")
    parser.add_argument("--init-from", type=Path, default=None,
                        help="continue the LLaVA stage from a previous output folder (its llava/ and clip/; "
                             "the CLIP stage is skipped); its manifest is kept in this one's 'previous'")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stop-after", type=int, default=None,
                        help="end the LLaVA stage after this many steps (schedule still set by --llava-steps)")
    parser.add_argument("--save-every", type=int, default=0,
                        help="also write llava-step<N>/ with its held-out accuracy every N steps (0: off)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = args.out or weights_dir(args.model)
    tokenizer = build_tiny_tokenizer()
    clip_tokenizer = build_tiny_tokenizer(add_eos=True)
    processor = image_processor()
    record: dict = {
        "model": args.model,
        "seed": args.seed,
        "command": "python -m rediprune.demo.train " + shlex.join(sys.argv[1:] if argv is None else argv),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": __import__("transformers").__version__},
    }
    start = time.perf_counter()
    if args.model == "image" and args.init_from is not None:
        from transformers import CLIPModel, LlavaForConditionalGeneration

        previous = json.loads((args.init_from / "manifest.json").read_text())
        record["previous"] = {k: previous.get(k) for k in ("command", "seed", "clip", "llava", "heldout", "files")}
        clip = CLIPModel.from_pretrained(args.init_from / "clip")
        record["clip"] = {"from": str(args.init_from / "clip"), "sha256": _sha256(args.init_from / "clip" / "model.safetensors")}
        _save(clip, clip_tokenizer, processor, out / "clip")
        model = LlavaForConditionalGeneration.from_pretrained(args.init_from / "llava")
        sequences = Sequences(tokenizer, "<image>", model.config.image_seq_length)
        sample, pixel_key, stream = _image_sample, "pixel_values", TRAIN
        docs, visuals = benchmark_docs(args.heldout), lambda d: [render_scene(d["objects"], d["background"])]
    elif args.model == "image":
        clip = build_clip()
        record["clip"] = train_clip(clip, clip_tokenizer, processor, args.clip_steps, args.batch, args.clip_lr)
        record["clip"]["seconds"] = round(time.perf_counter() - start, 1)
        _save(clip, clip_tokenizer, processor, out / "clip")  # usable (video model) while the LLaVA stage runs
        model = build_llava(clip)
        sequences = Sequences(tokenizer, "<image>", model.config.image_seq_length)
        sample, pixel_key, stream = _image_sample, "pixel_values", TRAIN
        docs, visuals = benchmark_docs(args.heldout), lambda d: [render_scene(d["objects"], d["background"])]
    else:
        from transformers import CLIPModel

        clip_dir = args.clip_from or weights_dir("image") / "clip"
        clip = CLIPModel.from_pretrained(clip_dir)
        record["clip"] = {"from": str(clip_dir), "sha256": _sha256(clip_dir / "model.safetensors")}
        model = build_video_llava(clip)
        run = (model.config.vision_config.image_size // model.config.vision_config.patch_size) ** 2 + 1
        sequences = Sequences(tokenizer, "<video>", run * VIDEO_FRAMES)
        sample, pixel_key, stream = _video_sample, "pixel_values_videos", TRAIN_VIDEO
        docs, visuals = video_docs(args.heldout), render_frames
    stage = time.perf_counter()
    before = record.get("previous", {}).get("llava", {})
    offset = int(before.get("completed", before.get("steps", 0))) + int(before.get("offset", 0))
    def checkpoint(done: int) -> None:
        folder = out / f"llava-step{done}"
        _save(model, tokenizer, processor, folder)
        acc = heldout_accuracy(model, sequences, processor, docs[:200], visuals, pixel_key)
        (folder / "heldout.json").write_text(json.dumps({"completed": done, **acc}) + "\n")
        tqdm.write(f"step {done}: held-out {acc}")

    record["llava"] = train_llava(model, sequences, processor, sample, args.llava_steps, args.batch, args.llava_lr,
                                  args.turns, pixel_key, stream, offset, args.stop_after, checkpoint, args.save_every)
    record["llava"]["offset"] = offset
    record["llava"]["seconds"] = round(time.perf_counter() - stage, 1)
    record["heldout"] = heldout_accuracy(model, sequences, processor, docs, visuals, pixel_key)
    record["heldout"]["questions"] = len(docs)
    record["seconds"] = round(time.perf_counter() - start, 1)
    _save(model, tokenizer, processor, out / "llava")
    path = write_manifest(out, record)
    print(json.dumps({k: record[k] for k in ("heldout", "seconds", "bytes")}, indent=None))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
