"""LLaVA-1.5 (``LlavaForConditionalGeneration``: llava-hf/llava-1.5-7b-hf, -13b-hf).

Insertion point: between ``vision_tower`` hidden state ``vision_feature_layer`` (CLS dropped by the
"default" strategy: L = 576 at 336 px) and ``multi_modal_projector``. Every frame is an ``<image>``
placeholder of its own, so a multi-frame input is a sequence of images. Everything else is the base.
"""
from __future__ import annotations

from transformers import AutoImageProcessor, AutoTokenizer, LlavaForConditionalGeneration

from rediprune.models.base import BackboneAdapter
from rediprune.models.processing import FrameProcessor


class LlavaAdapter(BackboneAdapter):
    family = "llava"
    model_class = LlavaForConditionalGeneration
    default_clip = "openai/clip-vit-large-patch14-336"  # LLaVA-1.5's own vision tower

    @staticmethod
    def load_processor(path: str) -> FrameProcessor:
        """Tokenizer and image processor of a checkpoint (PIL backend where torchvision is missing)."""
        return FrameProcessor(AutoTokenizer.from_pretrained(path), AutoImageProcessor.from_pretrained(path))
