"""Video-LLaVA (``VideoLlavaForConditionalGeneration``: LanguageBind/Video-LLaVA-7B-hf).

Two towers: images go through ``image_tower`` with CLS dropped ("default": L = 256 at 224 px), videos
through ``video_tower`` with CLS kept (L = 257 per frame, as the model itself does). Both share one
projector, which is the insertion point. A video is one ``<video>`` placeholder expanded to F·L ids.
"""
from __future__ import annotations

import torch
from transformers import VideoLlavaForConditionalGeneration
from transformers.modeling_outputs import BaseModelOutputWithPooling

from rediprune.models.base import BackboneAdapter
from rediprune.models.types import PreparedBatch


class VideoLlavaAdapter(BackboneAdapter):
    family = "video_llava"
    model_class = VideoLlavaForConditionalGeneration
    # LanguageBind's towers are tuned from CLIP ViT-L/14 (224 px); this CLIP's projection is the nearest
    # public one. Set backbone.clip_checkpoint to override.
    default_clip = "openai/clip-vit-large-patch14"

    def tower_name(self, modality: str) -> str:
        return "video_tower" if modality == "video" else "image_tower"

    def placeholder_id(self, modality: str) -> int:
        config = self.model.config
        return int(config.video_token_id if modality == "video" else config.image_token_id)

    def placeholders_per_sample(self, frames: int, modality: str) -> int:
        if modality == "video":
            return 1 if frames else 0
        return frames

    def tokens_per_frame(self, modality: str, height: int, width: int) -> int:
        if modality == "video":  # get_video_features never drops CLS
            return (height // self.patch_size) * (width // self.patch_size) + 1
        return super().tokens_per_frame(modality, height, width)

    def select_tokens(self, hidden: torch.Tensor, modality: str, *, embeddings: bool = False) -> torch.Tensor:
        return hidden if modality == "video" else super().select_tokens(hidden, modality)

    def pack(self, projected: torch.Tensor, modality: str) -> dict[str, BaseModelOutputWithPooling]:
        return {modality: BaseModelOutputWithPooling(pooler_output=projected.unsqueeze(0))}

    def unmodified_inputs(self, batch: PreparedBatch) -> dict[str, torch.Tensor]:
        inputs = {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}
        pixels = self._pixels(batch)
        if batch.modality == "video":
            inputs["pixel_values_videos"] = _per_sample(pixels, batch.frames)
        else:
            inputs["pixel_values"] = pixels
        return inputs


def _per_sample(pixels: torch.Tensor, frames: list[int]) -> torch.Tensor:
    """(N, 3, H, W) → (B, F, 3, H, W); the unmodified video models need equal frame counts."""
    if len(set(frames)) != 1:
        raise ValueError(f"frames={frames} is not allowed here; the unmodified model needs equal frame counts")
    return pixels.view(len(frames), frames[0], *pixels.shape[1:])
