"""Pruning inside real transformers LLaVA models: LLaVA-1.5, LLaVA-NeXT-Video, Video-LLaVA.

Usage::

    from rediprune.config.evaluation import BackboneConfig
    from rediprune.models import PruningSettings, load_adapter
    from rediprune.pruning import PruneParams

    adapter = load_adapter(BackboneConfig(family="video_llava", checkpoint="tiny"))
    adapter.configure(PruningSettings(pruner="rediprune", params=PruneParams(ratio=0.15, alpha=0.5)))
    batch = adapter.prepare(["What is moving?"], [frames])   # one list of PIL frames per sample
    result = adapter.generate(batch, max_new_tokens=16)       # .texts, .sequences, .stats
    logits = adapter.prefill(batch)                           # one pruned forward pass (timing, FLOPs)

API (everything else is internal):

- ``load_adapter(backbone_cfg) -> BackboneAdapter``: "tiny" checkpoint → embedded tiny model of the
  family; otherwise hub id / local path, with ``dtype``/``device``/``attn_implementation`` from the config.
- ``BackboneAdapter``: ``family``, ``model``, ``processor`` (:class:`FrameProcessor`: ``tokenizer`` and
  per-frame ``image_processor``), ``tokenizer``, ``settings``, ``placement``;
  ``configure(PruningSettings)`` (switch pruner/hyperparameters, no reload);
  ``prepare(questions, visuals, modality=None) -> PreparedBatch``;
  ``generate(batch, max_new_tokens=16, **generate_kwargs) -> GenerationResult`` (greedy);
  ``prefill(batch, logits_to_keep=1) -> logits``; ``last_stats`` (SampleStats of the last call);
  ``encode(pixel_values, modality="image") -> (frames, L, C)`` pre-projection features;
  ``feature_cache`` (a MutableMapping of encoder features or None), ``cache_stats`` {"hits", "misses"},
  ``reset_cache_stats()``; ``unmodified_inputs(batch)`` (kwargs with which the untouched model encodes
  the batch itself: the "Original" reference).
- ``PruningSettings(pruner, params: PruneParams, query_strategy, query_max_tokens, placement)``, also
  ``PruningSettings.from_configs(pruner_cfg, hyperparameters, query_cfg)``.
- ``PreparedBatch``, ``GenerationResult(texts, sequences, stats)``, ``SampleStats`` (frames,
  tokens_per_frame_before, tokens_per_frame_after, visual_tokens_before, visual_tokens_after,
  text_tokens, selection_seconds, query_seconds).
- ``tiny_vocabulary()`` / ``TINY_WORDS``: the words the tiny models' tokenizer knows (for bundled tasks).

How pruning is inserted (the model is never patched): see ``base``; per family: ``llava``,
``video_llava``, ``llava_next_video`` (which also documents the before/after-pool setting).
"""
from rediprune.models.base import BackboneAdapter
from rediprune.models.loading import ADAPTERS, load_adapter
from rediprune.models.processing import FrameProcessor
from rediprune.models.tiny import TINY_WORDS, tiny_vocabulary
from rediprune.models.types import GenerationResult, PreparedBatch, PruningSettings, SampleStats

__all__ = [
    "ADAPTERS",
    "BackboneAdapter",
    "FrameProcessor",
    "GenerationResult",
    "PreparedBatch",
    "PruningSettings",
    "SampleStats",
    "TINY_WORDS",
    "load_adapter",
    "tiny_vocabulary",
]
