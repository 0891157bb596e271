"""Values exchanged with a model adapter: pruning settings in, prepared batches and results out."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from rediprune.pruning import PruneParams, get_pruner
from rediprune.pruning.hyperparameters import PLACEMENT_CHOICES as PLACEMENTS
from rediprune.pruning.hyperparameters import QUERY_SOURCES, values_of
from rediprune.pruning.query import check_strategy

if TYPE_CHECKING:
    from rediprune.config import RunConfig
    from rediprune.config.evaluation import PrunerConfig, QueryConfig



def _value(x: object) -> object:
    """Enum members (from structured configs) as their plain values."""
    return getattr(x, "value", x)


@dataclass(frozen=True)
class PruningSettings:
    """Which pruner runs inside the model, with which hyperparameters, and where.

    pruner: a registered pruner name (``rediprune.pruning.available_pruners()``); params: its
    hyperparameters; query_strategy / query_max_tokens: how the text query is built from the prompt
    (SPEC §3), used only by pruners that require a query; query_source: "llm" (those prompt embeddings) or
    "clip_text" (relevance from the CLIP text tower, SPEC §3 last paragraph); placement: "default" (the pruner's own:
    ReDiPrune before the projector, DivPrune/CDPruner after it), "pre_projection" or "post_projection".
    Invalid values raise ValueError naming the field.
    """

    pruner: str = "rediprune"
    params: PruneParams = field(default_factory=PruneParams)
    query_strategy: str = "exponential"
    query_max_tokens: int = 128
    placement: str = "default"
    query_source: str = "llm"

    def __post_init__(self) -> None:
        object.__setattr__(self, "pruner", _value(self.pruner))
        object.__setattr__(self, "query_strategy", _value(self.query_strategy))
        object.__setattr__(self, "placement", _value(self.placement))
        object.__setattr__(self, "query_source", _value(self.query_source))
        get_pruner(self.pruner)  # ValueError "pruner=… is not a known pruner; allowed: …"
        if not isinstance(self.params, PruneParams):
            raise ValueError(f"params={self.params!r} is not allowed; expected a rediprune.pruning.PruneParams")
        try:
            check_strategy(self.query_strategy)
        except ValueError as err:
            raise ValueError(f"query_strategy: {err}") from None
        max_tokens = self.query_max_tokens
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(f"query_max_tokens={self.query_max_tokens!r} is not allowed; expected an integer ≥ 1")
        if self.query_source not in QUERY_SOURCES:
            raise ValueError(
                f"query_source={self.query_source!r} is not allowed; expected one of {', '.join(QUERY_SOURCES)}"
            )
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement={self.placement!r} is not allowed; expected one of {', '.join(PLACEMENTS)}")

    @classmethod
    def from_configs(
        cls, pruner: "PrunerConfig", hyper: "RunConfig", query: "QueryConfig"
    ) -> "PruningSettings":
        """Settings from the structured configs of ``conf/`` (pruner group, top-level hyperparameters, query).

        ``hyper`` is anything with the hyperparameters as attributes: the RunConfig, which holds them top level.
        """
        params = PruneParams(
            **values_of(hyper),
            prefilter=str(_value(pruner.prefilter)),
            seed=pruner.seed,
        )
        return cls(
            pruner=str(_value(pruner.name)),
            params=params,
            query_strategy=str(_value(query.strategy)),
            query_max_tokens=query.max_tokens,
            placement=str(_value(pruner.placement)),
            query_source=str(_value(getattr(query, "source", "llm"))),
        )


@dataclass
class PreparedBatch:
    """Prompts and pixels of a batch, as the *unmodified* model would receive them.

    ``input_ids``/``attention_mask`` (B, T) are left-padded and hold L placeholder ids per frame; the
    adapter shrinks each frame's run to the pruner's k only when it runs the model. ``pixel_values``
    (N, 3, H, W) holds every frame of the batch in sample order; ``frames[b]`` says how many belong to
    sample b. ``modality`` is "image" or "video" (Video-LLaVA routes them through different towers).
    ``questions`` are as placed in the prompts: visual placeholder strings removed, whitespace stripped.
    """

    questions: list[str]
    prompts: list[str]
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    pixel_values: torch.Tensor | None
    frames: list[int]
    modality: str
    tokens_per_frame: int  # L: placeholder ids per frame before pruning

    def __len__(self) -> int:
        return len(self.questions)

    def subset(self, rows: list[int]) -> "PreparedBatch":
        """The samples ``rows`` (in that order) as a batch of their own, as ``prepare`` would make it.

        Frames follow their samples; columns that are padding in every kept row are dropped, so the
        prompts are left-padded to the longest kept one only.
        """
        starts = [sum(self.frames[:b]) for b in range(len(self))]
        mask = self.attention_mask[rows]
        used = mask.any(dim=0).nonzero()
        first = int(used[0]) if used.numel() else mask.shape[1]
        pixels = None
        if self.pixel_values is not None and sum(self.frames[b] for b in rows):
            pixels = torch.cat([self.pixel_values[starts[b] : starts[b] + self.frames[b]] for b in rows])
        return PreparedBatch(
            questions=[self.questions[b] for b in rows],
            prompts=[self.prompts[b] for b in rows],
            input_ids=self.input_ids[rows][:, first:],
            attention_mask=mask[:, first:],
            pixel_values=pixels,
            frames=[self.frames[b] for b in rows],
            modality=self.modality,
            tokens_per_frame=self.tokens_per_frame,
        )


@dataclass(frozen=True)
class SampleStats:
    """Token accounting of one sample's pruned input, as fed to the LLM (per sample, per call)."""

    frames: int
    tokens_per_frame_before: int  # L
    tokens_per_frame_after: float  # mean kept per frame (k for per-frame pruners)
    visual_tokens_before: int  # frames · L
    visual_tokens_after: int
    text_tokens: int  # prompt tokens that are not visual placeholders (padding excluded)
    selection_seconds: float  # the pruner's keep_mask alone (CUDA-synchronised)
    query_seconds: float = 0.0  # this sample's share of building text queries / CLIP relevance (not in selection)


@dataclass
class GenerationResult:
    """Greedy generation: decoded answers, generated ids (B, new; prompt removed, pad-filled), stats."""

    texts: list[str]
    sequences: torch.Tensor
    stats: list[SampleStats]
