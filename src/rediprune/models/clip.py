"""CLIP text-image relevance for CDPruner (SPEC §4), computed only when a pruner requires it.

Usage::

    scorer = ClipScorer.load("openai/clip-vit-large-patch14-336", device="cuda", dtype=torch.float16)
    text = scorer.text_embeds("What is the man holding?")        # (M, E): one row per 77-token segment
    image = scorer.image_embeds(last_hidden, tower.post_layernorm) # (N, P, E)

As in CDPruner, the image side is the backbone's own vision tower: its last hidden state through the
tower's post-layernorm and CLIP's ``visual_projection``; the text side is CLIP's text tower on the raw
question, split into segments of the text tower's 77 positions (zero-padded, masked). The relevance itself,
``rel = mean_m(−⟨img, text_m⟩)`` with min-max normalisation, is ``rediprune.pruning.baselines.clip_relevance``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ClipScorer:
    """A CLIPModel's projections and text tower plus its tokenizer, on the backbone's device and dtype."""

    def __init__(self, model: nn.Module, tokenizer, device: torch.device | str, dtype: torch.dtype) -> None:
        self.model = model.to(device=device, dtype=dtype).eval()
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.segment = int(model.config.text_config.max_position_embeddings)

    @classmethod
    def load(cls, checkpoint: str, device: torch.device | str, dtype: torch.dtype) -> "ClipScorer":
        """Load a CLIPModel and its tokenizer from a hub id or local path."""
        from transformers import AutoTokenizer, CLIPModel

        model = CLIPModel.from_pretrained(checkpoint, dtype=dtype)
        return cls(model, AutoTokenizer.from_pretrained(checkpoint), device, dtype)

    @property
    def vision_hidden_size(self) -> int:
        return int(self.model.visual_projection.in_features)

    @torch.inference_mode()
    def text_embeds(self, text: str) -> torch.Tensor:
        """(M, E) projected text embeddings of ``text`` split into M segments of the tower's length."""
        ids = torch.tensor(self.tokenizer(text)["input_ids"], dtype=torch.long, device=self.device)
        segments = max(1, -(-ids.numel() // self.segment))
        pad = segments * self.segment - ids.numel()
        mask = torch.ones_like(ids)
        ids, mask = F.pad(ids, (0, pad)), F.pad(mask, (0, pad))
        out = self.model.text_model(
            input_ids=ids.view(segments, self.segment), attention_mask=mask.view(segments, self.segment)
        )
        return self.model.text_projection(out.pooler_output)

    @torch.inference_mode()
    def image_embeds(self, last_hidden: torch.Tensor, post_layernorm: nn.Module) -> torch.Tensor:
        """(N, P, E) per-token CLIP image embeddings from a vision tower's last hidden state (N, P, C)."""
        if last_hidden.shape[-1] != self.vision_hidden_size:
            raise ValueError(
                f"clip_checkpoint: its visual_projection takes width {self.vision_hidden_size}, but the "
                f"backbone's vision tower has width {last_hidden.shape[-1]}; use the CLIP the backbone's tower "
                "comes from"
            )
        hidden = post_layernorm(last_hidden.to(self.model.visual_projection.weight.dtype))
        return self.model.visual_projection(hidden)
