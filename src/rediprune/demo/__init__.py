"""The demo world: trained tiny LLaVA backbones shipped as package data, and the scenes they answer about.

Usage::

    from rediprune.demo import weights_dir
    weights_dir("image") / "llava"      # a from_pretrained folder (backbone.checkpoint of backbone=demo_image)

``world`` draws the scenes and questions, ``build`` defines the architectures, ``train`` regenerates the
shipped weights (``python -m rediprune.demo.train``). Hydra configs reach the folders through the
``rediprune_demo`` resolver: ``checkpoint: ${rediprune_demo:image/llava}``.
"""
from __future__ import annotations

from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent / "weights"


def weights_dir(model: str) -> Path:
    """Folder of a shipped demo model ("image" or "video"): ``llava/``, ``clip/``, ``manifest.json``."""
    if model not in ("image", "video"):
        raise ValueError(f"model={model!r} is not allowed; expected 'image' or 'video'")
    return WEIGHTS / model


def demo_path(relative: str) -> str:
    """Absolute path of a file or folder under the shipped weights (the ``rediprune_demo`` resolver)."""
    return str(WEIGHTS / relative)
