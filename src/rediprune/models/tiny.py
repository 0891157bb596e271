"""Embedded tiny backbones: the real transformers classes with tiny configs and seeded weights, no hub.

Usage::

    from rediprune.models.tiny import build_tiny, tiny_vocabulary

    model, processor = build_tiny("video_llava")          # VideoLlavaForConditionalGeneration, its processor
    words = tiny_vocabulary()                             # every token the tiny tokenizer knows, id order

They exist so that the whole pipeline (pruning inside the model, lmms-eval, metrics, sweeps) runs offline in
seconds; their answers are meaningless until a trained demo model replaces them. Each family keeps what
matters for pruning from its real counterpart: LLaVA-1.5 drops CLS (L = 16 patches), Video-LLaVA keeps CLS
for video (L = 16 + 1) and has separate image and video towers, LLaVA-NeXT-Video runs a 2×2 average pool
(64 patches → L = 16). Sizes follow ``NOTES-stack.md``: CLIP vision (patch 8, hidden 32, 2 layers) and
Llama (hidden 64, ffn 128, 2 layers, vocabulary of about 300 words). Weights come from the model's own
initialisation under a fixed seed (the global RNG is left untouched), so every build is identical.

The tokenizer is a ``tokenizers`` WordLevel model over :data:`TINY_WORDS` (lower-cased, split on
whitespace and punctuation) wrapped in ``PreTrainedTokenizerFast`` with ``<image>``/``<video>`` added.
Bundled tasks must use only these words (``tiny_vocabulary()``), or their text becomes ``<unk>``.
Frames are preprocessed by the PIL CLIP image processor (torchvision is not available beside this torch),
inside a :class:`~rediprune.models.processing.FrameProcessor` (transformers' video-family processor classes
refuse to be built without a torchvision video processor).
"""
from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import (
    CLIPConfig,
    CLIPImageProcessorPil,
    CLIPModel,
    CLIPTextConfig,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaNextVideoConfig,
    LlavaNextVideoForConditionalGeneration,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    VideoLlavaConfig,
    VideoLlavaForConditionalGeneration,
)

from rediprune.models.processing import FrameProcessor

SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>", "<image>", "<video>")

# Words the tiny tokenizer knows (after lower-casing). Bundled tasks draw questions and answers from here.
TINY_WORDS: tuple[str, ...] = (
    # punctuation and digits
    ".", ",", "?", "!", ":", ";", "'", "-", "(", ")", "/",
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10",
    # prompt templates and instructions
    "user", "assistant", "system", "question", "answer", "answers", "option", "options", "choice", "choose",
    "select", "letter", "word", "single", "phrase", "short", "briefly", "using", "given", "from", "following",
    "please", "describe", "tell", "me", "you", "your", "yes", "no", "true", "false", "correct", "best",
    "a", "b", "c", "d", "e",
    # function words
    "the", "an", "of", "in", "on", "at", "to", "is", "are", "was", "were", "be", "it", "its", "this", "that",
    "these", "those", "there", "here", "and", "or", "not", "with", "without", "by", "for", "as", "than",
    "then", "do", "does", "did", "can", "has", "have", "had", "any", "all", "some", "each", "every", "only",
    "most", "more", "less", "same", "different", "other", "another", "both", "either", "neither", "one",
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "zero", "none", "many", "much",
    # question words
    "what", "which", "who", "where", "when", "why", "how", "whose",
    # colours
    "color", "colour", "red", "green", "blue", "yellow", "black", "white", "gray", "orange", "purple",
    "pink", "brown", "dark", "light", "bright",
    # shapes, sizes, positions
    "shape", "circle", "square", "triangle", "rectangle", "dot", "line", "stripe", "cross", "ring",
    "big", "small", "large", "tiny", "size", "left", "right", "top", "bottom", "middle", "center", "corner",
    "above", "below", "under", "over", "next", "near", "far", "inside", "outside", "side", "half", "up",
    "down", "position", "located",
    # scene words
    "image", "picture", "photo", "video", "clip", "frame", "frames", "scene", "object", "objects", "thing",
    "background", "foreground", "part", "area", "region", "count", "number", "total", "appear", "appears",
    "visible", "see", "shown", "show", "shows", "contain", "contains", "present",
    # time and motion (video questions)
    "first", "second", "third", "last", "final", "start", "end", "beginning", "before", "after", "during",
    "while", "moving", "move", "moves", "moved", "static", "still", "change", "changes", "changed",
    "stays", "stay", "grow", "grows", "shrink", "shrinks", "fast", "slow", "direction", "time", "happens",
    "happen", "across", "toward", "away",
    # a few objects
    "cat", "dog", "car", "ball", "box", "tree", "house", "person", "man", "woman", "sky", "sun", "cup",
)


def tiny_vocabulary() -> list[str]:
    """Every token of the tiny tokenizer in id order: the special tokens, then :data:`TINY_WORDS`."""
    return list(SPECIAL_TOKENS) + list(TINY_WORDS)


def build_tiny_tokenizer(*, add_eos: bool = False) -> PreTrainedTokenizerFast:
    """WordLevel tokenizer over :func:`tiny_vocabulary`; prepends ``<s>`` (and appends ``</s>`` if asked).

    Padding is on the left, as decoder-only generation needs. ``add_eos`` is for the tiny CLIP text
    tower, whose pooled output reads the end-of-text position.
    """
    vocab = {token: i for i, token in enumerate(tiny_vocabulary())}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()  # \w+ | [^\w\s]+
    single = "<s> $A </s>" if add_eos else "<s> $A"
    core.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[("<s>", vocab["<s>"]), ("</s>", vocab["</s>"])]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        padding_side="left",
        model_max_length=512,
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>", "<video>"]})
    return tokenizer


def _vision_config(image_size: int = 32) -> CLIPVisionConfig:
    return CLIPVisionConfig(
        image_size=image_size,
        patch_size=8,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        projection_dim=16,
    )


def token_ids() -> dict[str, int]:
    """vocab_size and the pad/bos/eos ids of the tiny tokenizer, as text configs take them."""
    vocab = tiny_vocabulary()
    return {
        "vocab_size": len(vocab),
        "pad_token_id": vocab.index("<pad>"),
        "bos_token_id": vocab.index("<s>"),
        "eos_token_id": vocab.index("</s>"),
    }


def _text_config() -> LlamaConfig:
    return LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        **token_ids(),
    )


def square_image_processor(image_size: int) -> CLIPImageProcessorPil:
    """CLIP preprocessing for square pictures of ``image_size`` pixels (passed through unresized)."""
    crop = {"height": image_size, "width": image_size}
    return CLIPImageProcessorPil(size={"shortest_edge": image_size}, crop_size=crop)


# family → (image size, seed); NeXT-Video uses 64 px so its pooled grid (4×4) matches the others' 16 tokens
_FAMILY_SPECS = {"llava": (32, 1001), "llava_next_video": (64, 1002), "video_llava": (32, 1003)}


def _family_spec(family: str) -> tuple[int, int]:
    """(image size, seed) of a family's tiny backbone; an unknown family is a ValueError."""
    if family not in _FAMILY_SPECS:
        raise ValueError(f"family={family!r} is not allowed; expected one of {', '.join(_FAMILY_SPECS)}")
    return _FAMILY_SPECS[family]


def _seeded(seed: int, build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def build_tiny(family: str, attn_implementation: str = "sdpa") -> tuple[PreTrainedModel, FrameProcessor]:
    """Model (eval mode, float32, CPU) and frame processor of the tiny backbone of ``family``."""
    image_size, seed = _family_spec(family)
    tokenizer = build_tiny_tokenizer()
    ids = {"image_token_id": tokenizer.convert_tokens_to_ids("<image>")}
    if family != "llava":
        ids["video_token_id"] = tokenizer.convert_tokens_to_ids("<video>")
    common = dict(
        vision_config=_vision_config(image_size),
        text_config=_text_config(),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        **ids,
    )
    if family == "llava":
        config, model_class = LlavaConfig(**common), LlavaForConditionalGeneration
    elif family == "video_llava":
        config, model_class = VideoLlavaConfig(**common), VideoLlavaForConditionalGeneration
    else:
        config = LlavaNextVideoConfig(
            spatial_pool_mode="average", spatial_pool_stride=2, image_grid_pinpoints=[[image_size, image_size]], **common
        )
        model_class = LlavaNextVideoForConditionalGeneration
    config._attn_implementation = attn_implementation
    model = _seeded(seed, lambda: model_class(config))
    return model.eval(), FrameProcessor(tokenizer=tokenizer, image_processor=square_image_processor(image_size))


def build_tiny_clip(family: str) -> tuple[CLIPModel, PreTrainedTokenizerFast]:
    """Tiny CLIPModel for CDPruner relevance: the family's tiny vision config, a text tower over the tiny
    vocabulary (77 positions, as CLIP's), seeded weights; and its tokenizer (``<s> … </s>``)."""
    image_size, seed = _family_spec(family)
    text = CLIPTextConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=16,
        **token_ids(),
    )
    vision = _vision_config(image_size).to_dict()
    config = CLIPConfig(text_config=text.to_dict(), vision_config=vision, projection_dim=16)
    model = _seeded(seed + 500, lambda: CLIPModel(config))
    return model.eval(), build_tiny_tokenizer(add_eos=True)
