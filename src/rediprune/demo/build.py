"""Architectures of the demo backbones: real transformers classes, sized to train on a 2-core CPU.

Usage::

    from rediprune.demo.build import build_clip, build_llava, image_processor

    clip = build_clip()                         # CLIPModel: 96-px images, patch 12 → 64 patches; text tower
    llava = build_llava(clip)                   # LlavaForConditionalGeneration whose tower is clip's
    video = build_video_llava(clip)             # VideoLlavaForConditionalGeneration, both towers clip's

Sizes follow ``NOTES-demo.md`` (what trained here): CLIP vision hidden 64, 2 layers, MLP 256; CLIP text
hidden 64, 2 layers; Llama hidden 128, 4 layers, 8 heads, MLP 256 (measured: with the vision tower
frozen, 2 layers or 4 heads stayed far below 4 layers × 8 heads at the same steps — 79 % vs 97 % held-out
after ~930 steps of batch 64 — since the LLM alone must find the asked-about token among 64). The tokenizer is the tiny backbones' WordLevel
tokenizer (``rediprune.models.tiny.build_tiny_tokenizer``), so every demo question is in its vocabulary.
The LLM reads the tower's last layer (``vision_feature_layer=-1``, CLS dropped: 64 tokens per image) —
with a 2-layer tower, the penultimate layer real LLaVA reads would be a single attention block deep.
"""
from __future__ import annotations

from transformers import (
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    CLIPTextConfig,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    VideoLlavaConfig,
    VideoLlavaForConditionalGeneration,
)

from rediprune.demo.world import CELL, SIZE
from rediprune.models.tiny import build_tiny_tokenizer, square_image_processor, token_ids

PROJECTION = 32  # CLIP joint embedding width


def vision_config() -> CLIPVisionConfig:
    return CLIPVisionConfig(
        image_size=SIZE,
        patch_size=CELL,
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=PROJECTION,
    )


def text_config() -> LlamaConfig:
    return LlamaConfig(
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        **token_ids(),
    )


def image_processor() -> CLIPImageProcessorPil:
    """CLIP preprocessing at the demo size (a 96-px picture passes unresized)."""
    return square_image_processor(SIZE)


def build_clip() -> CLIPModel:
    """CLIPModel with the demo vision tower and a text tower over the tiny vocabulary (77 positions)."""
    text = CLIPTextConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=PROJECTION,
        **token_ids(),
    )
    config = CLIPConfig(text_config=text.to_dict(), vision_config=vision_config().to_dict(), projection_dim=PROJECTION)
    return CLIPModel(config)


def _common() -> dict:
    tokenizer = build_tiny_tokenizer()
    return dict(
        vision_config=vision_config(),
        text_config=text_config(),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )


def build_llava(clip: CLIPModel) -> LlavaForConditionalGeneration:
    """LLaVA-1.5 architecture whose vision tower carries ``clip``'s vision weights."""
    config = LlavaConfig(image_seq_length=(SIZE // CELL) ** 2, **_common())
    model = LlavaForConditionalGeneration(config)
    model.model.vision_tower.load_state_dict(clip.vision_model.state_dict())
    return model


def build_video_llava(clip: CLIPModel) -> VideoLlavaForConditionalGeneration:
    """Video-LLaVA architecture; its image and video towers both carry ``clip``'s vision weights."""
    tokenizer = build_tiny_tokenizer()
    config = VideoLlavaConfig(video_token_id=tokenizer.convert_tokens_to_ids("<video>"), **_common())
    model = VideoLlavaForConditionalGeneration(config)
    for tower in (model.model.image_tower, model.model.video_tower):
        tower.load_state_dict(clip.vision_model.state_dict())
    return model
