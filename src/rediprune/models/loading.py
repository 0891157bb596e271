"""Build an adapter from a :class:`~rediprune.config.evaluation.BackboneConfig`."""
from __future__ import annotations

import torch

from rediprune.config.evaluation import BackboneConfig
from rediprune.models.base import BackboneAdapter
from rediprune.models.clip import ClipScorer
from rediprune.models.llava import LlavaAdapter
from rediprune.models.llava_next_video import LlavaNextVideoAdapter
from rediprune.models.video_llava import VideoLlavaAdapter

ADAPTERS: dict[str, type[BackboneAdapter]] = {
    "llava": LlavaAdapter,
    "llava_next_video": LlavaNextVideoAdapter,
    "video_llava": VideoLlavaAdapter,
}
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
PRUNE_POSITIONS = ("after_pool", "before_pool")


def _value(x: object) -> str:
    return str(getattr(x, "value", x))


def _device(name: str) -> torch.device:
    if name == "cpu":
        return torch.device("cpu")
    if not (name == "cuda" or name.startswith("cuda:")):
        raise ValueError(f"backbone.device={name!r} is not allowed; expected 'cpu', 'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        raise ValueError(f"backbone.device={name!r} is not allowed here: CUDA is not available on this machine")
    device = torch.device(name)
    return torch.device("cuda", torch.cuda.current_device()) if device.index is None else device


def load_adapter(backbone: BackboneConfig) -> BackboneAdapter:
    """Load the model of ``backbone`` and wrap it in its family's adapter (pruner ``none`` configured).

    ``checkpoint`` "tiny" builds the embedded tiny model of the family (``rediprune.models.tiny``);
    anything else is a hub id or local path loaded with ``from_pretrained`` in ``dtype`` straight onto
    ``device``. The CDPruner CLIP model is loaded lazily from ``clip_checkpoint`` (None: the tiny CLIP for
    "tiny", else the family's ``default_clip``) the first time a pruner needs it.
    """
    family, dtype_name, position = _value(backbone.family), _value(backbone.dtype), _value(backbone.prune_position)
    if family not in ADAPTERS:
        raise ValueError(f"backbone.family={family!r} is not allowed; expected one of {', '.join(ADAPTERS)}")
    if dtype_name not in DTYPES:
        raise ValueError(f"backbone.dtype={dtype_name!r} is not allowed; expected one of {', '.join(DTYPES)}")
    if position not in PRUNE_POSITIONS:
        raise ValueError(
            f"backbone.prune_position={position!r} is not allowed; expected one of {', '.join(PRUNE_POSITIONS)}"
        )
    if position != "after_pool" and family != "llava_next_video":
        raise ValueError(
            f"backbone.prune_position={position!r} is not allowed for family {family!r}; only llava_next_video pools"
        )
    attn = backbone.attn_implementation
    if attn not in ("sdpa", "eager"):
        raise ValueError(f"backbone.attn_implementation={attn!r} is not allowed; expected 'sdpa' or 'eager'")
    device, dtype, cls = _device(backbone.device), DTYPES[dtype_name], ADAPTERS[family]
    clip_checkpoint = backbone.clip_checkpoint

    if backbone.checkpoint == "tiny":
        from rediprune.models.tiny import build_tiny, build_tiny_clip

        model, processor = build_tiny(family, attn)
        checkpoint = f"tiny/{family}"

        def clip_loader() -> ClipScorer:
            if clip_checkpoint:
                return ClipScorer.load(clip_checkpoint, device, dtype)
            clip_model, clip_tokenizer = build_tiny_clip(family)
            return ClipScorer(clip_model, clip_tokenizer, device, dtype)

    else:
        checkpoint = backbone.checkpoint
        model = cls.model_class.from_pretrained(checkpoint, dtype=dtype, attn_implementation=attn, device_map=str(device))
        processor = cls.load_processor(checkpoint)
        clip_name = clip_checkpoint or cls.default_clip

        def clip_loader() -> ClipScorer:
            return ClipScorer.load(clip_name, device, dtype)

    return cls(
        model,
        processor,
        checkpoint=checkpoint,
        device=device,
        dtype=dtype,
        prune_position=position,
        clip_loader=clip_loader,
    )
