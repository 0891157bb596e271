"""Baseline pruners (SPEC §4): DivPrune, CDPruner, random and none, behind the common Pruner interface.

Usage::

    from rediprune.pruning import PruneParams, get_pruner
    from rediprune.pruning.baselines import clip_relevance

    keep = get_pruner("divprune").keep_mask(projected, PruneParams(ratio=0.1))        # (F, L) bool
    rel = clip_relevance(clip_patch_embeds, clip_text_embeds)                          # (F, L) raw
    keep = get_pruner("cdpruner").keep_mask(projected, PruneParams(ratio=0.1), relevance=rel)

DivPrune is ReDiPrune's no-query path with α = 0 over all tokens of the sample at once, so it reuses
:func:`rediprune.pruning.selection.rediprune_select` rather than a second copy of the greedy loop.
CDPruner's greedy DPP MAP inference runs all frames in one loop of k steps, in fp32, with no host
synchronisation inside the loop.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from rediprune.pruning.registry import Need, Placement, PruneParams, Pruner, keep_count, register
from rediprune.pruning.selection import rediprune_select
from rediprune.pruning.validation import check_features

# A residual gain (squared distance of a kernel feature to the span of the chosen ones) at or below
# this counts as zero. Kernel entries lie in [-1, 1] (unit vectors, relevance in [0, 1]), and fp32
# cancellation leaves residuals of order 1e-7 on exhausted directions, so this separates "no new
# direction" from a real gain.
_DPP_EPS = 1e-6


def _mask_from_indices(idx: torch.Tensor, frames: int, length: int) -> torch.Tensor:
    """Bool (frames, length) mask with True at the (frames, k) indices ``idx``."""
    mask = torch.zeros(frames, length, dtype=torch.bool, device=idx.device)
    return mask.scatter_(1, idx, True)


def _all_kept(x: torch.Tensor) -> torch.Tensor:
    return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)


# --------------------------------------------------------------------------------------- DivPrune


@register
class DivPrune(Pruner):
    """DivPrune (Alvar et al., CVPR 2025): max-min diversity over all of the sample's tokens, no text.

    One budget k = max(1, round(r·F·L)) over the F·L tokens of all frames together (frames may keep
    different counts). First pick: the token whose nearest other token is farthest; then
    argmax_j min_{u∈S} D[u, j] with D = 1 − cosine, ties to the lowest index. Placed after the
    projector as in the original; an adapter may place it before and must say so in results.
    """

    name = "divprune"
    requires = frozenset()
    placement = Placement.POST_PROJECTION
    per_frame = False

    def keep_mask(
        self,
        features: torch.Tensor,
        params: PruneParams,
        *,
        query: torch.Tensor | None = None,
        relevance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = check_features(features)
        frames, length, width = x.shape
        # Max-min selection with α = 0 and no query is exactly DivPrune (SPEC §2.3, §3 "none").
        idx = rediprune_select(x.reshape(1, frames * length, width), None, params.ratio, alpha=0.0)
        flat = torch.zeros(frames * length, dtype=torch.bool, device=x.device).scatter_(0, idx[0], True)
        return flat.view(frames, length)


# --------------------------------------------------------------------------------------- CDPruner


def clip_relevance(image_embeds: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
    """CDPruner's raw relevance rel_i = mean_m(−⟨img_i, text_m⟩) of CLIP embeddings, (F, L), fp32.

    image_embeds: (F, L, E) or (L, E) patch embeddings in CLIP's joint space (vision tower → post
    layernorm → visual projection); text_embeds: (M, E) embeddings of the question's M 77-token
    segments (text tower → text projection). Both are L2-normalised first, as in the original, so the
    inner product is a cosine. The minus sign is the original's: with CLIP's patch embeddings the raw
    cosine is anti-correlated with relevance. The result is *not* normalised; the cdpruner pruner
    min-max normalises it per frame.
    """
    img = image_embeds.unsqueeze(0) if image_embeds.dim() == 2 else image_embeds
    if img.dim() != 3 or text_embeds.dim() != 2 or img.shape[-1] != text_embeds.shape[-1]:
        raise ValueError(
            f"image_embeds.shape={tuple(image_embeds.shape)}, text_embeds.shape={tuple(text_embeds.shape)} "
            "are not allowed; expected (F, L, E) or (L, E) and (M, E) with the same E"
        )
    if text_embeds.shape[0] == 0:
        raise ValueError("text_embeds.shape[0]=0 is not allowed; expected at least one text segment (M ≥ 1)")
    img_n = F.normalize(img.float(), dim=-1, eps=1e-12)
    txt_n = F.normalize(text_embeds.float().to(img.device), dim=-1, eps=1e-12)
    return -(img_n @ txt_n.T).mean(dim=-1)


def normalize_relevance(relevance: torch.Tensor) -> torch.Tensor:
    """Min-max normalise relevance (F, L) over each frame's tokens to [0, 1], fp32.

    SPEC §4 says "min-max normalised over the batch"; the original normalises each row of its
    (batch, tokens) array over the tokens (dim 1), and a row is one image there, so here it is one
    frame. As in the original the span gets + 1e-6, which only rescales a frame (the greedy MAP choice
    is invariant to a per-frame scale) but keeps fp noise on a near-constant frame small. A frame whose
    relevance is exactly constant carries no conditioning; it gets relevance 1 everywhere (plain DPP
    on the similarity), where the original would zero the kernel and keep the first k tokens.
    """
    rel = relevance.float()
    low = rel.amin(dim=1, keepdim=True)
    span = rel.amax(dim=1, keepdim=True) - low
    return torch.where(span > 0, (rel - low) / (span + 1e-6), torch.ones_like(rel))


def conditional_dpp_select(features: torch.Tensor, relevance: torch.Tensor, k: int) -> torch.Tensor:
    """Greedy MAP inference of CDPruner's conditional DPP, per frame; returns sorted indices (F, k).

    features (F, L, D) (projected tokens), relevance (F, L) already in [0, 1]. The kernel is
    L = diag(q)·S·diag(q) with S = X̂X̂ᵀ (cosine similarity) and q the relevance. Each step adds the
    token with the largest residual gain d²_j = det(L_{S∪j}) / det(L_S), the first pick being the
    largest diagonal q_j²; the gains are kept up to date with an incremental Cholesky factor
    (Chen, Zhang & Zhou 2018, "Fast Greedy MAP Inference for DPP", Algorithm 1), so a step costs one
    kernel row (L·D) plus O(t·L), and the L×L kernel is never formed. Ties go to the lowest index.
    Once a frame's best gain is ≤ 1e-6 (its kernel has no new direction left) its remaining picks take
    the largest remaining gain without updating the factor, so exactly k distinct tokens come back.
    """
    x = F.normalize(features.float(), dim=-1, eps=1e-12)
    q = relevance.float()
    frames, length, _ = x.shape
    rows = torch.arange(frames, device=x.device)
    # diag(L) = q²·‖x̂‖², with ‖x̂‖² = 1 taken exactly (0 for all-zero tokens) so that equal relevances
    # tie exactly and go to the lowest index rather than to fp32 rounding noise in the norm
    gains = torch.where(x.abs().amax(dim=-1) > 0, q * q, 0.0)
    factor = torch.zeros(frames, k, length, device=x.device)  # row t: c_t over all tokens
    chosen = torch.zeros(frames, length, dtype=torch.bool, device=x.device)
    picks = torch.empty(frames, k, dtype=torch.long, device=x.device)
    for t in range(k):
        j = gains.masked_fill(chosen, float("-inf")).argmax(dim=1)
        picks[:, t] = j
        chosen[rows, j] = True
        if t + 1 == k:
            break
        gain_j = gains[rows, j]
        kernel_row = q[rows, j, None] * q * torch.bmm(x, x[rows, j].unsqueeze(2)).squeeze(2)  # L[j, :]
        if t:
            kernel_row = kernel_row - torch.bmm(factor[rows, :t, j].unsqueeze(1), factor[:, :t]).squeeze(1)
        live = gain_j > _DPP_EPS
        e = torch.where(live[:, None], kernel_row / gain_j.clamp_min(_DPP_EPS).sqrt()[:, None], 0.0)
        factor[:, t] = e
        gains = gains - e * e
    return picks.sort(dim=1).values


@register
class CDPruner(Pruner):
    """CDPruner (Zhang et al., NeurIPS 2025): conditional DPP over projected tokens, per frame.

    Needs ``relevance`` (F, L): the raw CLIP relevance from :func:`clip_relevance`, which this pruner
    min-max normalises per frame (:func:`normalize_relevance`). Every frame keeps its own
    k = max(1, round(r·L)) (the original is image-only; a video's frames are treated as images).
    """

    name = "cdpruner"
    requires = frozenset({Need.CLIP_RELEVANCE})
    placement = Placement.POST_PROJECTION
    per_frame = True
    frames_independent = True

    def keep_mask(
        self,
        features: torch.Tensor,
        params: PruneParams,
        *,
        query: torch.Tensor | None = None,
        relevance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = check_features(features)
        if relevance is None:
            raise ValueError(
                "relevance=None is not allowed for pruner 'cdpruner'; pass the per-token CLIP relevance "
                "(F, L) from rediprune.pruning.baselines.clip_relevance"
            )
        rel = relevance.unsqueeze(0) if relevance.dim() == 1 else relevance
        if tuple(rel.shape) != tuple(x.shape[:2]):
            raise ValueError(
                f"relevance.shape={tuple(relevance.shape)} is not allowed; expected {tuple(x.shape[:2])} "
                "(frames, tokens) matching the features"
            )
        if not rel.is_floating_point() or not bool(torch.isfinite(rel).all()):
            raise ValueError("relevance is not allowed to be non-float or non-finite; expected finite floats")
        frames, length, _ = x.shape
        k = keep_count(params.ratio, length)
        if k >= length:
            return _all_kept(x)
        idx = conditional_dpp_select(x, normalize_relevance(rel.to(x.device)), k)
        return _mask_from_indices(idx, frames, length)


# ---------------------------------------------------------------------------------- random / none


@register
class RandomPruner(Pruner):
    """Uniformly random k = max(1, round(r·L)) tokens per frame, without replacement.

    The draw comes from a CPU ``torch.Generator`` seeded with ``params.seed`` and is then moved to the
    features' device, so the same seed and shape give the same mask on every machine and device.
    Every call with the same seed repeats the same positions; vary ``seed`` per sample for
    independent draws.
    """

    name = "random"
    requires = frozenset()
    placement = Placement.PRE_PROJECTION
    per_frame = True

    def keep_mask(
        self,
        features: torch.Tensor,
        params: PruneParams,
        *,
        query: torch.Tensor | None = None,
        relevance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = check_features(features)
        frames, length, _ = x.shape
        k = keep_count(params.ratio, length)
        if k >= length:
            return _all_kept(x)
        gen = torch.Generator(device="cpu").manual_seed(params.seed)
        # the k smallest of L i.i.d. uniforms index a uniformly random k-subset
        idx = torch.rand(frames, length, generator=gen).argsort(dim=1)[:, :k]
        return _mask_from_indices(idx.to(x.device), frames, length)


@register
class NoPruning(Pruner):
    """The unpruned model: keeps every token whatever the ratio."""

    name = "none"
    requires = frozenset()
    placement = Placement.PRE_PROJECTION
    per_frame = True

    def keep_mask(
        self,
        features: torch.Tensor,
        params: PruneParams,
        *,
        query: torch.Tensor | None = None,
        relevance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return _all_kept(check_features(features))

    def kept_per_frame(self, frames: int, length: int, params: PruneParams) -> int:
        return frames * length


__all__ = [
    "CDPruner",
    "DivPrune",
    "NoPruning",
    "RandomPruner",
    "clip_relevance",
    "conditional_dpp_select",
    "normalize_relevance",
]
