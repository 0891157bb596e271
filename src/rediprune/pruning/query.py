"""The prompt-derived text query of ReDiPrune (paper Eq. 1, Table 4; SPEC §3).

Usage::

    q = build_queries(input_ids, attention_mask, model.get_input_embeddings().weight,
                      visual_token_ids=[image_token_id], strategy="exponential")   # (B, D) fp32

The query of each prompt uses the tokens after its last visual placeholder (the whole prompt if it has
none), padding removed with a boolean mask, at most the last ``max_tokens``. All prompts of a batch are
processed together on a padded (B, n_max) grid. A row of zeros means "no query" (strategy ``none`` or an
empty tail); the selection then runs its no-text path.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from rediprune.pruning.hyperparameters import QUERY_STRATEGIES

_EXP_RATE = 3.0  # w_j ∝ exp(3 t_j)
_PEAK_SIGMA = 0.25  # w_j ∝ exp(−(t_j − 0.5)² / (2σ²))


def check_strategy(strategy: str) -> None:
    """Raise ValueError for an unknown strategy, listing the allowed ones."""
    if strategy not in QUERY_STRATEGIES:
        raise ValueError(
            f"query strategy={strategy!r} is not a known strategy; allowed: {', '.join(QUERY_STRATEGIES)}"
        )


def query_tails(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    visual_token_ids: Sequence[int],
    max_tokens: int = 128,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather each prompt's query tokens, right-aligned in time order: (ids (B, n), present (B, n))."""
    if input_ids.dim() != 2 or attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"input_ids.shape={tuple(input_ids.shape)} and attention_mask.shape="
            f"{tuple(attention_mask.shape)} are not allowed; expected equal shapes (B, T)"
        )
    if max_tokens < 1:
        raise ValueError(f"max_tokens={max_tokens!r} is not allowed; expected an integer ≥ 1")
    batch, length = input_ids.shape
    device = input_ids.device
    pos = torch.arange(length, device=device).expand(batch, length)
    real = attention_mask.bool()
    visual = torch.zeros_like(real)
    for token in visual_token_ids:
        visual |= input_ids == token
    last_visual = torch.where(visual & real, pos, torch.full_like(pos, -1)).amax(dim=1)
    tail = real & (pos > last_visual[:, None])
    # rank tokens from the end of the tail: 0 = last token; keep the last max_tokens
    from_end = tail.flip(1).cumsum(1).flip(1) - 1
    keep = tail & (from_end < max_tokens)
    width = int(keep.sum(dim=1).max().item()) if keep.any() else 0
    slot = width - 1 - from_end  # column of each kept token, right-aligned
    ids = torch.zeros(batch, max(width, 1), dtype=input_ids.dtype, device=device)
    present = torch.zeros(batch, max(width, 1), dtype=torch.bool, device=device)
    rows = torch.arange(batch, device=device)[:, None].expand(batch, length)
    ids[rows[keep], slot[keep]] = input_ids[keep]
    present[rows[keep], slot[keep]] = True
    return ids, present


def build_queries(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    embed_weight: torch.Tensor,
    visual_token_ids: Sequence[int],
    strategy: str = "exponential",
    max_tokens: int = 128,
) -> torch.Tensor:
    """Query vectors (B, D) in fp32 from prompts (B, T) and the LLM's input-embedding matrix (V, D)."""
    check_strategy(strategy)
    batch = input_ids.shape[0]
    dim = embed_weight.shape[-1]
    if strategy == "none":
        return torch.zeros(batch, dim, device=embed_weight.device)
    ids, present = query_tails(input_ids, attention_mask, visual_token_ids, max_tokens)
    ids, present = ids.to(embed_weight.device), present.to(embed_weight.device)
    emb = F.embedding(ids, embed_weight).float() * present[..., None]  # (B, n, D), zero at padding
    count = present.sum(dim=1, keepdim=True)  # (B, 1)
    if strategy == "average":
        return emb.sum(dim=1) / count.clamp(min=1)
    # t_j = linspace(0, 1, n) over each row's own n tokens (right-aligned, so index from the row start)
    first = present.shape[1] - count  # column of the row's first token
    col = torch.arange(present.shape[1], device=emb.device)[None, :]
    t = ((col - first) / (count - 1).clamp(min=1)).clamp(min=0.0)
    if strategy == "middle_peak":
        logits = -((t - 0.5) ** 2) / (2 * _PEAK_SIGMA**2)
        return _weighted(emb, logits, present)
    # self-attention context c_j = Σ_l softmax_l(ê_j·ê_l) e_l over the row's tokens
    unit = F.normalize(emb, dim=-1, eps=1e-12)
    sim = torch.bmm(unit, unit.transpose(1, 2)).masked_fill(~present[:, None, :], float("-inf"))
    attn = torch.softmax(sim - sim.amax(dim=2, keepdim=True).clamp(min=-1e4), dim=2).nan_to_num(0.0)
    context = torch.bmm(attn, emb) * present[..., None]
    if strategy == "self_attention":
        return context.sum(dim=1) / count.clamp(min=1)
    return _weighted(context, _EXP_RATE * t, present)


def _weighted(vectors: torch.Tensor, logits: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Σ_j w_j v_j with w = softmax(logits) over present tokens (w_j ∝ exp(logit_j)); 0 for empty rows."""
    w = torch.softmax(logits.masked_fill(~present, float("-inf")), dim=1).nan_to_num(0.0)
    return torch.bmm(w.unsqueeze(1), vectors).squeeze(1)
