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

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from rediprune.pruning.registry import Need, Placement, PruneParams, Pruner, keep_count, register
from rediprune.pruning.selection import inverse_norms, rediprune_select
from rediprune.pruning.validation import check_features

# A residual gain (squared distance of a kernel feature to the span of the chosen ones) at or below
# this counts as zero. Kernel entries lie in about [-1, 1] (unit vectors, relevance in about [0, 1]),
# and fp32 cancellation leaves residuals of order 1e-7 on exhausted directions, so this separates "no
# new direction" from a real gain.
_DPP_EPS = 1e-6
_NEG_INF = float("-inf")


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
        frames_per_sample: Sequence[int] | None = None,
    ) -> torch.Tensor:
        x = check_features(features, check_finite=False)  # rediprune_select checks
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
    min-max normalises it over each sample's frames (:func:`normalize_relevance`).
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


def normalize_relevance(relevance: torch.Tensor, frames_per_sample: Sequence[int] | None = None) -> torch.Tensor:
    """CDPruner's min-max normalisation of relevance (F, L) over all tokens of each sample, fp32.

    The original computes ``(rel − rel.min() + 1e-6) / (rel.max() − rel.min())`` with ``min``/``max``
    over the whole tensor it is given, i.e. over every token of every frame of the sample (its video
    path sends all frames through one call): the 1e-6 goes to the numerator, so the least relevant
    token keeps a small non-zero relevance 1e-6/span rather than 0, and the span is not padded.
    ``frames_per_sample`` gives the frame count of each sample when the F rows hold several samples'
    frames (None: one sample); every sample is normalised over its own frames only, so a sample's
    result does not depend on what else is in the batch.

    A sample whose relevance is exactly constant carries no conditioning; it gets relevance 1
    everywhere (plain DPP on the similarity). The original divides by a zero span there: its kernel
    becomes inf/NaN and its greedy loop, taking the first NaN as the maximum, keeps the first k tokens
    of each frame, an artefact this project does not reproduce.
    """
    rel = relevance.float()
    out = torch.empty_like(rel)
    lo = 0
    for count in _sample_counts(frames_per_sample, rel.shape[0]):
        part = rel[lo : lo + count]
        if count:
            low, high = part.min(), part.max()
            span = high - low
            out[lo : lo + count] = (part - low + 1e-6) / span if bool(span > 0) else 1.0
        lo += count
    return out


def _sample_counts(frames_per_sample: Sequence[int] | None, frames: int) -> list[int]:
    """Frame counts per sample, checked to cover exactly ``frames`` rows (None: one sample)."""
    if frames_per_sample is None:
        return [frames]
    counts = [int(c) for c in frames_per_sample]
    if any(c < 0 for c in counts) or sum(counts) != frames:
        raise ValueError(
            f"frames_per_sample={list(frames_per_sample)!r} is not allowed; expected counts ≥ 0 that sum "
            f"to the {frames} frame(s) given"
        )
    return counts


def conditional_dpp_select(features: torch.Tensor, relevance: torch.Tensor, k: int) -> torch.Tensor:
    """Greedy MAP inference of CDPruner's conditional DPP, per frame; returns sorted indices (F, k).

    features (F, L, D) (projected tokens), relevance (F, L) already normalised. The kernel is
    L = diag(q)·S·diag(q) with S = X̂X̂ᵀ (cosine similarity) and q the relevance. Each step adds the
    token with the largest residual gain d²_j = det(L_{S∪j}) / det(L_S), the first pick being the
    largest diagonal q_j²; the gains are kept up to date with an incremental Cholesky factor
    (Chen, Zhang & Zhou 2018, "Fast Greedy MAP Inference for DPP", Algorithm 1), as in the original.
    Ties go to the lowest index. Once a frame's best gain is ≤ 1e-6 (its kernel has no new direction
    left) its remaining picks take the largest remaining gain without updating the factor, so exactly
    k distinct tokens come back (the original divides by the square root of that gain and turns NaN).

    Cost: one batched Gram of the raw features (compute-bound, near peak), then per step one Gram row
    per frame scaled by the inverse norms and relevances, and an O(t·L) factor update; the L×L kernel
    is never formed. On CPU the loop's small ops run in numpy (a fraction of torch's per-call cost).
    All frames share one loop; every product is per frame with the same shapes whatever the batch, so
    a frame's result does not depend on the other frames in the call.
    """
    x = features.float()
    q = relevance.float()
    frames = x.shape[0]
    gram = torch.bmm(x, x.transpose(1, 2))
    squared = gram.diagonal(dim1=1, dim2=2)  # ‖x_i‖² is the Gram's diagonal: no extra pass
    if not bool(torch.isfinite(squared).all()):
        check_features(x)  # names the problem; finite but overflowing norms pass on
    weight = q * inverse_norms(squared)  # K[j, i] = G[j, i]·w_j·w_i, w = q / ‖x‖
    # diag(L) = q²·‖x̂‖², with ‖x̂‖² = 1 taken exactly (0 for all-zero tokens) so that equal relevances
    # tie exactly and go to the lowest index rather than to fp32 rounding noise in the norm
    gains = torch.where(squared > 0, q * q, 0.0)
    factor = torch.zeros(frames, k, x.shape[1], device=x.device)  # row t: c_t over all tokens
    if x.device.type != "cpu":
        return _greedy_map_dense(gram, weight, gains, factor, k).sort(dim=1).values
    rows = torch.arange(frames, device=x.device)
    on_cpu = x.device.type == "cpu"
    lib = np if on_cpu else torch
    g, w, d2, c, r = (t.numpy() for t in (gram, weight, gains, factor, rows)) if on_cpu else (
        gram, weight, gains, factor, rows
    )
    picks = []
    for t in range(k):
        j = d2.argmax(1)
        picks.append(j)
        if t + 1 == k:
            break
        gain_j = d2[r, j]
        kernel_row = g[r, j] * w[r, j][:, None] * w  # L[j, :]
        if t:
            kernel_row -= (c[r, :t, j][:, None, :] @ c[:, :t])[:, 0]
        live = gain_j > _DPP_EPS
        e = kernel_row / lib.where(live, lib.sqrt(lib.where(live, gain_j, 1.0)), float("inf"))[:, None]
        c[:, t] = e
        d2 -= e * e
        d2[r, j] = _NEG_INF
    idx = torch.as_tensor(lib.stack(picks, 1), device=x.device)
    return idx.sort(dim=1).values


def _greedy_map_dense(
    gram: torch.Tensor, weight: torch.Tensor, gains: torch.Tensor, factor: torch.Tensor, k: int
) -> torch.Tensor:
    """The loop of :func:`conditional_dpp_select` on an accelerator; returns picks (F, k) in pick order.

    On a GPU the loop is bound by kernel launches: the kernel L = G·wwᵀ is formed once (one cheap pass)
    and each step reads its row with ``gather`` instead of advanced indexing and two scalings. Every
    element is computed with the same operations in the same order as the row-by-row loop —
    (G[j, i]·w_j)·w_i, the same (1, t) × (t, L) product per frame — so the picks are bit for bit equal.
    """
    frames, width = gains.shape
    kernel = gram * weight.unsqueeze(2)
    kernel.mul_(weight.unsqueeze(1))
    d2 = gains.clone()
    picks = torch.empty(frames, k, dtype=torch.long, device=gains.device)
    for t in range(k):
        j = d2.argmax(1, keepdim=True)  # (F, 1)
        picks[:, t] = j[:, 0]
        if t + 1 == k:
            break
        gain_j = torch.gather(d2, 1, j)  # (F, 1)
        kernel_row = torch.gather(kernel, 1, j.unsqueeze(2).expand(frames, 1, width)).squeeze(1)
        if t:
            past = torch.gather(factor[:, :t], 2, j.view(frames, 1, 1).expand(frames, t, 1))  # (F, t, 1)
            kernel_row -= torch.bmm(past.transpose(1, 2), factor[:, :t])[:, 0]
        live = gain_j > _DPP_EPS
        denominator = torch.where(live, gain_j, 1.0).sqrt_().masked_fill_(~live, float("inf"))
        e = kernel_row / denominator
        factor[:, t] = e
        d2 -= e * e
        d2.scatter_(1, j, _NEG_INF)
    return picks


@register
class CDPruner(Pruner):
    """CDPruner (Zhang et al., NeurIPS 2025): conditional DPP over projected tokens, per frame.

    Needs ``relevance`` (F, L): the raw CLIP relevance from :func:`clip_relevance`, which this pruner
    min-max normalises over all frames of each sample, as the original does over the frames it is
    given (:func:`normalize_relevance`); ``frames_per_sample`` says which rows belong to which sample
    when one call holds several. Every frame keeps its own k = max(1, round(r·L)) (the original treats
    a video's frames as rows of its batch, each with its own budget).
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
        frames_per_sample: Sequence[int] | None = None,
    ) -> torch.Tensor:
        x = check_features(features, check_finite=False)  # checked on the norms
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
            return _all_kept(check_features(x))
        idx = conditional_dpp_select(x, normalize_relevance(rel.to(x.device), frames_per_sample), k)
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
        frames_per_sample: Sequence[int] | None = None,
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
    hyperparameters = frozenset()  # keeps every token whatever the ratio

    def keep_mask(
        self,
        features: torch.Tensor,
        params: PruneParams,
        *,
        query: torch.Tensor | None = None,
        relevance: torch.Tensor | None = None,
        frames_per_sample: Sequence[int] | None = None,
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
