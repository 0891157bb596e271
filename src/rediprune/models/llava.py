"""LLaVA-1.5 (``LlavaForConditionalGeneration``: llava-hf/llava-1.5-7b-hf, -13b-hf).

Insertion point: between ``vision_tower`` hidden state ``vision_feature_layer`` (CLS dropped by the
"default" strategy: L = 576 at 336 px) and ``multi_modal_projector``. Every frame is an ``<image>``
placeholder of its own, so a multi-frame input is a sequence of images. Everything else is the base.
"""
from __future__ import annotations

from transformers import LlavaForConditionalGeneration

from rediprune.models.base import BackboneAdapter


class LlavaAdapter(BackboneAdapter):
    family = "llava"
    model_class = LlavaForConditionalGeneration
    default_clip = "openai/clip-vit-large-patch14-336"  # LLaVA-1.5's own vision tower
