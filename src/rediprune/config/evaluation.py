"""Structured configs for one pruned evaluation: backbone, dataset, pruner, query strategy, run settings.

Each dataclass is a Hydra config group schema (registered in ``rediprune.config``); OmegaConf checks
types and enum values when the config is composed, and ``__post_init__`` checks ranges when the
composed config is turned into objects (``rediprune.config.load``), before any model loads.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

from rediprune.pruning.hyperparameters import (
    PLACEMENT_CHOICES,
    PREFILTERS,
    PRUNERS,
    QUERY_SOURCES,
    QUERY_STRATEGIES,
    str_enum,
)
from rediprune.pruning.hyperparameters import fail as _fail


class Family(str, enum.Enum):
    """transformers model class a backbone is loaded as."""

    llava = "llava"  # LlavaForConditionalGeneration (LLaVA-1.5)
    llava_next_video = "llava_next_video"  # LlavaNextVideoForConditionalGeneration
    video_llava = "video_llava"  # VideoLlavaForConditionalGeneration


class Dtype(str, enum.Enum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


# The pruning layer's allowed values (rediprune.pruning.hyperparameters), as enums OmegaConf checks.
PrunerName = str_enum("PrunerName", PRUNERS, "A registered pruner (rediprune.pruning).")
QueryStrategy = str_enum("QueryStrategy", QUERY_STRATEGIES, "Query weighting of SPEC §3 (paper Table 4).")
QuerySource = str_enum("QuerySource", QUERY_SOURCES, "Which encoder the text query comes from (SPEC §3).")
Prefilter = str_enum("Prefilter", PREFILTERS, "Candidate pre-filter of ReDiPrune (SPEC §2.1 reference, §2.2 paper).")
PlacementChoice = str_enum("PlacementChoice", PLACEMENT_CHOICES, "Where the pruner acts; default: its own place.")


class ErrorPolicy(str, enum.Enum):
    """What an error inside generation does. Never an empty answer scored as wrong without a trace."""

    fail = "fail"  # stop the evaluation with the error (default)
    count = "count"  # answer "[generation error]" for that sample, count it, list it in the results


class PoolOrder(str, enum.Enum):
    """LLaVA-NeXT-Video only: prune the 2×2-pooled 144 tokens per frame, or the 576 before pooling."""

    after_pool = "after_pool"
    before_pool = "before_pool"


@dataclass
class BackboneConfig:
    """A LLaVA-style model and the dimensions the TFLOPs model uses (one source of truth for both)."""

    name: str = "tiny_llava"  # short label used in results and W&B
    family: Family = Family.llava
    checkpoint: str = "tiny"  # hub id or local path; "tiny" builds the embedded tiny model of `family`
    dtype: Dtype = Dtype.float32
    device: str = "cpu"  # "cpu", "cuda", "cuda:1", …
    attn_implementation: str = "sdpa"  # "eager" is forced for measured-FLOPs passes
    prune_position: PoolOrder = PoolOrder.after_pool  # LLaVA-NeXT-Video only; after_pool: the 144 pooled tokens, as the authors' code
    clip_checkpoint: Optional[str] = None  # CLIP (vision+text) for CDPruner relevance; None: tiny/default
    num_frames: int = 8  # frames per video the backbone was trained with (dataset.num_frames overrides)
    # LLM dimensions for the paper's TFLOPs formula (SPEC §5)
    layers: int = 2
    hidden: int = 64
    ffn: int = 128

    def __post_init__(self) -> None:
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            _fail("backbone.device", self.device, "'cpu', 'cuda' or 'cuda:N'")
        if self.attn_implementation not in ("sdpa", "eager"):
            _fail("backbone.attn_implementation", self.attn_implementation, "'sdpa' or 'eager'")
        for key in ("layers", "hidden", "ffn", "num_frames"):
            if getattr(self, key) < 1:
                _fail(f"backbone.{key}", getattr(self, key), "an integer ≥ 1")


@dataclass
class DatasetConfig:
    """An lmms-eval task (built-in or bundled) and how much of it to run."""

    name: str = "tiny_image"  # short label used in results and W&B
    task: str = "rediprune_tiny_image"  # lmms-eval task (or group) name
    # folder of local task YAMLs; "bundled": rediprune/evaluation/tasks; None: lmms-eval's built-in tasks
    include_path: Optional[str] = "bundled"
    modality: str = "image"  # "image": each visual is an image; "video": the visuals are one video's frames
    limit: Optional[int] = None  # first N documents (lmms-eval --limit); None: all
    batch_size: int = 1
    num_frames: Optional[int] = None  # frames sampled per video; None: backbone.num_frames
    max_new_tokens: Optional[int] = None  # cap on generated tokens; None: the task's generation_kwargs
    # metric that is "primary_metric" in results (higher is better): a name or glob ("gpt_eval_score_*"),
    # averaged over every (sub)task and match
    primary_metric: str = "exact_match"
    on_error: ErrorPolicy = ErrorPolicy.fail  # errors inside generation: fail the run, or count them
    text_tokens: Optional[float] = None  # average prompt length, for analytic TFLOPs tables

    def __post_init__(self) -> None:
        if not self.task.strip():
            _fail("dataset.task", self.task, "an lmms-eval task name")
        if self.modality not in ("image", "video"):
            _fail("dataset.modality", self.modality, "'image' or 'video'")
        if self.limit is not None and self.limit < 1:
            _fail("dataset.limit", self.limit, "null or an integer ≥ 1")
        if self.batch_size < 1:
            _fail("dataset.batch_size", self.batch_size, "an integer ≥ 1")
        if self.num_frames is not None and self.num_frames < 1:
            _fail("dataset.num_frames", self.num_frames, "null or an integer ≥ 1")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            _fail("dataset.max_new_tokens", self.max_new_tokens, "null or an integer ≥ 1")
        if not self.primary_metric.strip():
            _fail("dataset.primary_metric", self.primary_metric, "a metric name or glob")
        if self.text_tokens is not None and self.text_tokens <= 0:
            _fail("dataset.text_tokens", self.text_tokens, "null or a number > 0")


@dataclass
class PrunerConfig:
    """Which pruner, where it acts, and its non-swept settings."""

    name: PrunerName = PrunerName.rediprune
    placement: PlacementChoice = PlacementChoice.default
    prefilter: Prefilter = Prefilter.reference
    seed: int = 0  # random pruner


@dataclass
class QueryConfig:
    """How the text query is built from the prompt (SPEC §3)."""

    strategy: QueryStrategy = QueryStrategy.exponential
    max_tokens: int = 128  # at most this many prompt tokens after the last visual placeholder
    # llm: the paper's query; clip_text: relevance = cosine of CLIP text embedding and CLIP-projected
    # patches (backbone.clip_checkpoint); strategy then only matters as "none" (no query)
    source: QuerySource = QuerySource.llm

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            _fail("query.max_tokens", self.max_tokens, "an integer ≥ 1")


@dataclass
class MeasureConfig:
    """Efficiency measurements of an evaluation (paper Table 3 columns)."""

    timing_samples: int = 4  # samples timed for prefill / end-to-end / selection latency; 0 = off
    flops_samples: int = 2  # samples run under FlopCounterMode (eager attention); 0 = off
    max_new_tokens: int = 16  # generated tokens in each timed end-to-end run
    warmup: int = 1  # untimed runs before timing

    def __post_init__(self) -> None:
        for key in ("timing_samples", "flops_samples", "warmup"):
            if getattr(self, key) < 0:
                _fail(f"measure.{key}", getattr(self, key), "an integer ≥ 0")
        if self.max_new_tokens < 1:
            _fail("measure.max_new_tokens", self.max_new_tokens, "an integer ≥ 1")


__all__ = [
    "BackboneConfig",
    "DatasetConfig",
    "Dtype",
    "ErrorPolicy",
    "Family",
    "MeasureConfig",
    "PlacementChoice",
    "PoolOrder",
    "Prefilter",
    "PrunerConfig",
    "PrunerName",
    "QueryConfig",
    "QuerySource",
    "QueryStrategy",
]
