"""LLaVA-NeXT-Video (``LlavaNextVideoForConditionalGeneration``: llava-hf/LLaVA-NeXT-Video-7B-hf).

Every input goes through the video path (an image is a video of one frame, SPEC §1): ``vision_tower``
hidden state ``vision_feature_layer``, CLS dropped (576 tokens at 336 px), ``vision_resampler`` (2×2
average pool → 144 per frame), ``multi_modal_projector``. ``prune_position`` picks the insertion point:

- ``after_pool`` (default): prune the 144 pooled tokens, between resampler and projector. The paper's
  budgets and TFLOPs count 144 tokens per frame for this model (Table 1's "Original" 29.9 TFLOPs needs
  ≈ 4762 tokens: 32 frames × 144 + text), the authors' reference prunes the pooled tokens, and r = 1 then
  reproduces the unmodified model exactly.
- ``before_pool``: prune the 576 unpooled tokens and skip the pool (a pruned, irregular token set cannot be
  pooled 2×2), so k = round(r·576) tokens per frame reach the projector; at r = 0.25 the LLM sees as many
  tokens as the unpruned model. With this setting even pruner ``none`` differs from the unmodified model.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, CLIPImageProcessorPil, LlavaNextVideoForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutputWithPooling

from rediprune.models.base import BackboneAdapter
from rediprune.models.processing import FrameProcessor
from rediprune.models.types import PreparedBatch
from rediprune.models.video_llava import _per_sample


class LlavaNextVideoAdapter(BackboneAdapter):
    family = "llava_next_video"
    model_class = LlavaNextVideoForConditionalGeneration
    default_clip = "openai/clip-vit-large-patch14-336"

    @staticmethod
    def load_processor(path: str) -> FrameProcessor:
        """Frames are resized, cropped and normalised like the video processor does, by the PIL CLIP
        image processor (the checkpoint's own image processor tiles images "anyres", which videos skip)."""
        return FrameProcessor(AutoTokenizer.from_pretrained(path), CLIPImageProcessorPil.from_pretrained(path))

    @property
    def pooled(self) -> bool:
        return self.prune_position == "after_pool"

    @property
    def pool_stride(self) -> int:
        return int(self.model.config.spatial_pool_stride)

    def placeholder_id(self, modality: str) -> int:
        return int(self.model.config.video_token_id)

    def placeholders_per_sample(self, frames: int, modality: str) -> int:
        return 1 if frames else 0

    def tokens_per_frame(self, modality: str, height: int, width: int) -> int:
        if self.select_strategy != "default":
            raise ValueError(
                f"vision_feature_select_strategy={self.select_strategy!r} is not supported; expected 'default'"
            )
        rows, cols = height // self.patch_size, width // self.patch_size
        if self.pooled:
            return (rows // self.pool_stride) * (cols // self.pool_stride)
        return rows * cols

    def select_tokens(self, hidden: torch.Tensor, modality: str, *, embeddings: bool = False) -> torch.Tensor:
        patches = hidden[:, 1:]
        if not self.pooled:
            return patches
        if not embeddings:
            return self.model.model.vision_resampler(patches)  # the model's own pooler
        # CLIP embeddings for relevance: the same 2×2 grid, averaged (or max-ed, as the model's pool mode)
        n, length, dim = patches.shape
        side = math.isqrt(length)
        grid = patches.reshape(n, side, side, dim).permute(0, 3, 1, 2)
        pool = F.max_pool2d if self.model.config.spatial_pool_mode == "max" else F.avg_pool2d
        return pool(grid, self.pool_stride, self.pool_stride).flatten(2).transpose(1, 2)

    def pack(self, projected: torch.Tensor, modality: str) -> dict[str, BaseModelOutputWithPooling]:
        return {"video": BaseModelOutputWithPooling(pooler_output=[projected.unsqueeze(0)])}

    def unmodified_inputs(self, batch: PreparedBatch) -> dict[str, torch.Tensor]:
        return {
            "input_ids": batch.input_ids,
            "attention_mask": batch.attention_mask,
            "pixel_values_videos": _per_sample(self._pixels(batch), batch.frames),
        }
