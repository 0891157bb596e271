"""Prompt formatting and frame preprocessing shared by the adapters.

transformers' video processors (LLaVA-NeXT-Video, Video-LLaVA) need torchvision, which cannot be
installed beside the CPU torch of this project, and their processor classes refuse to be built without
one. Adapters therefore use a :class:`FrameProcessor`: the tokenizer plus the family's PIL image
processor, applied to each frame and stacked (NOTES-stack.md: max abs difference 0.015 against the
torchvision video processor). Placeholder expansion is done on token ids, which gives the same ids as the
processors' string expansion because ``<image>``/``<video>`` are added tokens that split the text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch


@dataclass
class FrameProcessor:
    """Tokenizer and per-frame image processor of a backbone (``adapter.processor``)."""

    tokenizer: Any  # transformers tokenizer
    image_processor: Any  # a PIL-backend image processor: resize, crop, normalise one frame
    image_token: str = "<image>"
    video_token: str = "<video>"

    def pixel_values(self, frames: Sequence[Any]) -> torch.Tensor:
        """(N, 3, H, W) float32 for N PIL images, in order."""
        out = self.image_processor(images=list(frames), return_tensors="pt")
        for key in ("pixel_values", "pixel_values_images"):  # VideoLlavaImageProcessor names it the latter
            if key in out:
                return out[key]
        raise KeyError(f"image processor returned {sorted(out.keys())}, none of them pixel values")

    @property
    def pad_token_id(self) -> int:
        tok = self.tokenizer
        for candidate in (tok.pad_token_id, tok.unk_token_id, tok.eos_token_id):
            if candidate is not None:
                return int(candidate)
        return 0


def expand_placeholders(ids: Sequence[int], placeholder_id: int, run: int) -> list[int]:
    """Replace each ``placeholder_id`` in ``ids`` by ``run`` copies of it."""
    out: list[int] = []
    for token in ids:
        out.extend([token] * run if token == placeholder_id else [token])
    return out


def left_pad(rows: Sequence[torch.Tensor], pad_id: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack 1-D id tensors into (B, T) ids and attention mask, padded on the left."""
    width = max(int(r.numel()) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    for b, row in enumerate(rows):
        n = int(row.numel())
        if n:
            ids[b, width - n :] = row.to(device)
            mask[b, width - n :] = 1
    return ids, mask


def shrink_placeholder_runs(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    placeholder_ids: Sequence[int],
    kept_per_frame: Sequence[torch.Tensor],
    tokens_per_frame: int,
    pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Shrink the run of L placeholder ids of every frame to its kept count, and re-pad on the left.

    ``input_ids``/``attention_mask`` (B, T) hold L = ``tokens_per_frame`` placeholders per frame, frames in
    order; ``kept_per_frame[b]`` (F_b,) gives each frame's kept count. Text tokens are untouched; since the
    placeholders of a frame are identical ids, which ones are removed does not matter.
    """
    rows = []
    for b in range(input_ids.shape[0]):
        ids = input_ids[b][attention_mask[b].bool()]
        visual = torch.zeros_like(ids, dtype=torch.bool)
        for token in placeholder_ids:
            visual |= ids == token
        positions = visual.nonzero().flatten()
        counts = kept_per_frame[b].to(ids.device)
        if positions.numel() != counts.numel() * tokens_per_frame:
            raise ValueError(
                f"sample {b}: {positions.numel()} placeholder ids for {counts.numel()} frame(s) of "
                f"{tokens_per_frame} tokens; the prompt and the frames disagree"
            )
        rank = torch.arange(positions.numel(), device=ids.device)
        drop = (rank % tokens_per_frame) >= counts.repeat_interleave(tokens_per_frame)
        keep = torch.ones_like(ids, dtype=torch.bool)
        keep[positions[drop]] = False
        rows.append(ids[keep])
    return left_pad(rows, pad_id, input_ids.device)
