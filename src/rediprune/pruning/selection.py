"""ReDiPrune token selection (SPEC §2): relevance to the prompt query plus max-min diversity, per frame.

Usage::

    idx = rediprune_select(features, query, ratio=0.1, alpha=0.5)          # (B, k), sorted per row
    idx = rediprune_select(frame, None, ratio=0.1, alpha=0.0)              # diversity only (DivPrune rule)
    idx = rediprune_select(features, query, 0.1, tau=0.2, prefilter="paper")  # Algorithm 1 literally

All B frames run through one greedy loop of k steps. A candidate set is a permutation of the L tokens
(the "candidate order") plus a validity mask, so the default pre-filter's branches share one loop (the
paper's Algorithm 1, which rebuilds its candidates before every pick, has its own), and ties go to the
earliest position in candidate order (``argmax`` returns the first maximum). The running score is
updated incrementally with one row of the dissimilarity matrix per pick (SPEC §2.4), in fp32 whatever
the input dtype.

Where the rows come from depends on the device, as measured by ``benchmarks/selection.py``:
- on CPU, with a query (the reference pre-filter): each row is computed when it is picked, k·L·C
  multiply-adds per frame as SPEC §2.4's cost note says, by a compiled per-frame loop that keeps the
  frame's features in cache (:mod:`rediprune.pruning.cpu_greedy`, which says why it is compiled); the
  norms and relevance come from one fused pass. On this project's 2-core CPU this is 0.4-0.7× one
  batched Gram matmul.
- on accelerators, without a query (the DivPrune first pick reads all of D) and for Algorithm 1: from
  one batched Gram of the raw features (L²·C, compute-bound, near peak on a GPU), of which only the
  picked rows are scaled to dissimilarities.
The reference's extra costs (a full matrix per frame, a min over all chosen rows per step) are avoided.

Every product is per frame with the same shapes whatever the batch (per-frame dot products for norms,
relevance and rows on CPU; one matrix-vector product per frame and a batched Gram whose items are one
frame each elsewhere), and a batch mixing rows with and without a query is selected as its two parts,
so a frame's selection is bitwise the same alone, in any batch and with any batch size.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from rediprune.pruning.registry import Need, Placement, PruneParams, Pruner, keep_count, register
from rediprune.pruning.validation import check_features, check_params, check_query

_NEG_INF = float("-inf")


def align_query(query: torch.Tensor, width: int) -> torch.Tensor:
    """Map queries (..., Dq) to the visual width C without a learned map (SPEC §2 ``align``)."""
    dq = query.shape[-1]
    if dq == width:
        return query
    if dq > width and dq % width == 0:
        return query.reshape(*query.shape[:-1], width, dq // width).mean(-1)
    if dq > width:
        flat = query.reshape(-1, 1, dq)
        return F.adaptive_avg_pool1d(flat, width).reshape(*query.shape[:-1], width)
    reps = math.ceil(width / dq)
    return query.repeat(*([1] * (query.dim() - 1)), reps)[..., :width]


def _normalize(x: torch.Tensor) -> torch.Tensor:
    # norm(x) = x / max(‖x‖₂, 1e-12), exactly F.normalize's definition
    return F.normalize(x, p=2.0, dim=-1, eps=1e-12)


def inverse_norms(squared: torch.Tensor) -> torch.Tensor:
    """1 / max(‖x‖, 1e-12) from squared norms ‖x‖², as rsqrt(max(‖x‖², 1e-24)) (a new tensor).

    rsqrt rather than 1 / sqrt: on CPU torch's sqrt goes through MKL's threaded vector-math path, and
    right after the Gram on this project's contended 2-core machine it measured 8-15 ms for a few
    thousand values (a thread wake-up), against 0.1 ms for rsqrt; both compute 1/√x in fp32.
    """
    return squared.clamp(min=1e-24).rsqrt_()


def _divprune_first(sim: torch.Tensor) -> torch.Tensor:
    """Position (B,) of the token whose nearest other token is farthest: argmax_i min_{j≠i} D_ij."""
    dist = 1.0 - sim
    dist.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    return dist.amin(dim=2).argmax(dim=1)


def _similarity(
    x: torch.Tensor, inv_norm: torch.Tensor, order: torch.Tensor | None, gram: torch.Tensor | None
) -> torch.Tensor:
    """Cosine similarities ⟨x̂_i, x̂_j⟩ (B, P, P) of the candidates, in candidate order (Algorithm 1 mode).

    One batched Gram of the raw features (``gram`` if the caller has it, overwritten), scaled by the
    inverse norms afterwards. A full permutation (P = L) permutes the small L×L result; a subset
    (P < L) gathers its features.
    """
    if order is not None and order.shape[1] < x.shape[1]:
        xc = torch.gather(x, 1, order.unsqueeze(2).expand(-1, -1, x.shape[2]))
        inv = torch.gather(inv_norm, 1, order)
        sim = torch.bmm(xc, xc.transpose(1, 2))
        return sim.mul_(inv.unsqueeze(2)).mul_(inv.unsqueeze(1))
    sim = torch.bmm(x, x.transpose(1, 2)) if gram is None else gram
    sim.mul_(inv_norm.unsqueeze(2)).mul_(inv_norm.unsqueeze(1))
    return sim if order is None else _permute(sim, order)


def _permute(matrix: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``matrix[b][order[b]][:, order[b]]`` for every frame b of a (B, L, L) matrix and (B, L) order."""
    size = order.shape[1]
    matrix = torch.gather(matrix, 1, order.unsqueeze(2).expand(-1, -1, matrix.shape[2]))
    return torch.gather(matrix, 2, order.unsqueeze(1).expand(-1, size, -1))


def _relevance(x: torch.Tensor, qn: torch.Tensor) -> torch.Tensor:
    """Raw relevance ⟨x_i, q̂⟩ (B, L): one matrix-vector product per frame.

    Per frame on purpose: a product over the flattened (B·L, C) features, or a batched one over B
    frames, rounds a frame's rows differently depending on how many other frames share the call (BLAS
    kernels treat tail rows and batch counts differently), and near-duplicate tokens then flip picks.
    One (L, C)·(C,) call per frame gives every frame the same bits alone, in any batch, with any
    batch size. ``qn`` is (1, C) shared by all frames or (B, C).
    """
    out = torch.empty(x.shape[:2], dtype=x.dtype, device=x.device)
    shared = qn.shape[0] == 1
    for b in range(x.shape[0]):
        torch.mv(x[b], qn[0 if shared else b], out=out[b])
    return out


def _reference_candidates(
    s: torch.Tensor, k: int, tau: float, with_query: bool
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Candidate order and validity of SPEC §2.1, built once per frame (no query: the pre-filter is off).

    Returns (order (B, P) or None for the identity order, valid (B, P) or None for all valid).
    """
    batch, length = s.shape
    if tau <= 0 or not with_query:
        return None, None
    by_relevance = torch.sort(s, dim=1, descending=True, stable=True).indices
    if k < length // 2:
        return by_relevance[:, : min(length, max(3 * k, k + 1))], None
    passing = s >= tau
    enough = (passing.sum(dim=1) >= k)[:, None]
    identity = torch.arange(length, device=s.device).expand(batch, length)
    return torch.where(enough, identity, by_relevance), torch.where(enough, passing, identity < k)


def _gram_greedy(
    x: torch.Tensor,
    gram: torch.Tensor | None,
    inv_norm: torch.Tensor,
    s: torch.Tensor,
    with_query: bool,
    order: torch.Tensor | None,
    valid: torch.Tensor | None,
    k: int,
    alpha: float,
) -> torch.Tensor:
    """The reference greedy with rows taken from the candidates' Gram: token indices picked (B, k).

    Used where the Gram is needed anyway (no query: the DivPrune first pick reads all of D) and on
    accelerators. All rows of a call have a query or none has (``rediprune_select`` splits the others).
    """
    length, width = x.shape[1], x.shape[2]
    if order is None:  # (an all-zero query may come here without the Gram)
        g = torch.bmm(x, x.transpose(1, 2)) if gram is None else gram
        inv, sc = inv_norm, s
    else:
        inv, sc = torch.gather(inv_norm, 1, order), torch.gather(s, 1, order)
        if order.shape[1] < length:  # a subset: the Gram of its gathered features only
            xc = torch.gather(x, 1, order.unsqueeze(2).expand(-1, -1, width))
            g = torch.bmm(xc, xc.transpose(1, 2))
        else:
            g = _permute(torch.bmm(x, x.transpose(1, 2)) if gram is None else gram, order)
    if with_query:
        first = sc.masked_fill(~valid, _NEG_INF).argmax(dim=1) if valid is not None else sc.argmax(dim=1)
    else:  # no query: identity candidate order, so positions are token indices
        first = _divprune_first(g * inv.unsqueeze(2) * inv.unsqueeze(1))
    picks = _greedy(g, inv, sc, valid, first, k, alpha)
    return picks if order is None else torch.gather(order, 1, picks)


def _greedy(
    gram: torch.Tensor,
    inv_norm: torch.Tensor,
    sc: torch.Tensor,
    valid: torch.Tensor | None,
    first: torch.Tensor,
    k: int,
    alpha: float,
) -> torch.Tensor:
    """Greedy max-min + α·relevance over a fixed candidate order; returns picked positions (B, k).

    ``gram`` is the raw Gram (B, P, P) of the candidates in candidate order and ``inv_norm`` their
    inverse norms. score_i = min_{u∈S} D[u, i] + α·s_i equals min_{u∈S} (D[u, i] + α·s_i) bit for bit
    (adding the same float is monotone), so each pick j contributes one row
    E[j, :] = 1 − (G[j, :]·inv_j)·inv + α·s with E[j, j] = −inf (a pick excludes itself), and the
    running score is its element-wise minimum with that row (SPEC §2.4's incremental update). Only the
    k rows picked are ever scaled: no pass over the whole P×P matrix besides the Gram itself.
    Invalid candidates start at −inf.
    """
    batch = sc.shape[0]
    bonus = sc * alpha if alpha != 0.0 else None
    if gram.device.type != "cpu":
        return _greedy_dense(gram, inv_norm, bonus, valid, first, k)
    # The loop's ops are tiny; numpy's per-call overhead is a fraction of torch's dispatch, and both
    # argmaxes return the first maximum. The arrays share memory with the tensors.
    g, inv, first_ = gram.numpy(), inv_norm.numpy(), first.numpy()
    b_ = None if bonus is None else bonus.numpy()
    r_ = np.arange(batch)

    def row(j):
        e = 1.0 - g[r_, j] * inv[r_, j][:, None] * inv
        if b_ is not None:
            e += b_
        e[r_, j] = _NEG_INF
        return e

    score = row(first_)
    if valid is not None:
        score[~valid.numpy()] = _NEG_INF
    picks = [first_]
    for _ in range(1, k):
        nxt = score.argmax(1)
        picks.append(nxt)
        np.minimum(score, row(nxt), out=score)
    return torch.from_numpy(np.stack(picks, 1))


def _greedy_dense(
    gram: torch.Tensor,
    inv_norm: torch.Tensor,
    bonus: torch.Tensor | None,
    valid: torch.Tensor | None,
    first: torch.Tensor,
    k: int,
) -> torch.Tensor:
    """:func:`_greedy` on an accelerator: every row E[j, :] formed at once, then three kernels a pick.

    On a GPU the loop is bound by kernel launches, not by memory: one pass over the P×P Gram (cheap
    there) replaces the five small kernels and two advanced-indexing calls of forming a row per pick
    with one ``gather``. Each element is computed with the same operations in the same order as
    ``row(j)`` in :func:`_greedy` — ((G[j, i]·inv_j)·inv_i, then 1 − ·, then + α·s_i) — so the picks are
    bit for bit those of the row-by-row loop.
    """
    batch, width = inv_norm.shape
    dense = gram * inv_norm.unsqueeze(2)
    dense.mul_(inv_norm.unsqueeze(1))
    dense = torch.rsub(dense, 1.0)
    if bonus is not None:
        dense.add_(bonus.unsqueeze(1))
    dense.diagonal(dim1=1, dim2=2).fill_(_NEG_INF)  # a pick excludes itself
    index = first.view(batch, 1, 1).expand(batch, 1, width)
    score = torch.gather(dense, 1, index).squeeze(1)
    if valid is not None:
        score.masked_fill_(~valid, _NEG_INF)
    picks = torch.empty(batch, k, dtype=torch.long, device=gram.device)
    picks[:, 0] = first
    for step in range(1, k):
        nxt = score.argmax(1)
        picks[:, step] = nxt
        torch.minimum(score, torch.gather(dense, 1, nxt.view(batch, 1, 1).expand(batch, 1, width)).squeeze(1),
                      out=score)
    return picks


def _paper_greedy(
    x: torch.Tensor,
    gram: torch.Tensor | None,
    inv_norm: torch.Tensor,
    s: torch.Tensor,
    with_query: bool,
    k: int,
    alpha: float,
    tau: float,
    M: int | None,
    beta: float,
) -> torch.Tensor:
    """Algorithm 1 literally (SPEC §2.2): the candidate set is recomputed before every pick.

    In the order of decreasing relevance every candidate set of Algorithm 1 is "the first N remaining
    tokens" (the τ-passing tokens are a prefix of that order and top-N by relevance is a prefix too),
    so one step needs only N per frame and a cumulative count of remaining tokens. β·K_rem is floored.
    Without a query every remaining token is a candidate (no relevance to rank by) and the first pick is
    DivPrune's.
    """
    batch, length, _ = x.shape
    rows = torch.arange(batch, device=x.device)
    order = (torch.sort(s, dim=1, descending=True, stable=True).indices if with_query
             else torch.arange(length, device=x.device).expand(batch, length))
    sim = _similarity(x, inv_norm, order, gram)
    sp = torch.gather(s, 1, order)
    n_pass = (sp >= tau).sum(dim=1) if tau > 0 else None
    in_prefix = None if n_pass is None else torch.arange(length, device=x.device) < n_pass[:, None]
    remaining = torch.ones(batch, length, dtype=torch.bool, device=x.device)
    picks = torch.empty(batch, k, dtype=torch.long, device=x.device)
    md = None
    cap = length if M is None else M
    for step in range(k):
        k_rem, r_size = k - step, length - step
        m_rem = max(k_rem, min(cap, r_size))
        limit = min(m_rem, math.floor(beta * k_rem))
        if n_pass is None:
            n_eff = torch.full((batch,), min(r_size, limit), device=x.device)
        else:
            left = (remaining & in_prefix).sum(dim=1)  # τ-passing tokens not yet picked
            n_eff = torch.where(left < k_rem, torch.full_like(left, min(m_rem, r_size, limit)),
                                torch.clamp(left, max=limit))
        if not with_query:
            n_eff = torch.full_like(n_eff, r_size)
        rank = torch.cumsum(remaining, dim=1)
        cand = remaining & (rank <= n_eff[:, None])
        if step == 0:
            scores = sp.masked_fill(~cand, _NEG_INF)
            nxt = scores.argmax(dim=1) if with_query else _divprune_first(sim)
        else:
            scores = (md + alpha * sp).masked_fill_(~cand, _NEG_INF)
            nxt = scores.argmax(dim=1)
        picks[:, step] = nxt
        remaining[rows, nxt] = False
        row = 1.0 - sim[rows, nxt]
        md = row if md is None else torch.minimum(md, row)
    return torch.gather(order, 1, picks)


def rediprune_select(
    features: torch.Tensor,
    query: torch.Tensor | None,
    ratio: float,
    alpha: float = 0.5,
    tau: float = 0.0,
    *,
    M: int | None = None,
    beta: float = 3.0,
    prefilter: str = "reference",
    relevance: torch.Tensor | None = None,
) -> torch.Tensor:
    """Indices of the visual tokens ReDiPrune keeps, per frame, sorted ascending.

    features: (L, C) or (B, L, C) encoder patch features of B frames sharing one prompt.
    query: (Dq,) shared by all frames, (B, Dq) one per frame, or None (no text: relevance 0, no
        pre-filter, first pick by the DivPrune rule). An all-zero query row behaves like None.
    ratio: keep ratio r in (0, 1]; every frame keeps k = max(1, round(r·L)) tokens (all if k ≥ L).
    alpha, tau, M, beta: SPEC §2; M and beta only act with prefilter="paper".
    prefilter: "reference" (SPEC §2.1, default) or "paper" (SPEC §2.2).
    relevance: (B, L) or (L,) relevance s_i computed elsewhere (a query from another encoder, SPEC §3
        last paragraph: cosines of CLIP text and CLIP-projected patches); it replaces ⟨x̂_i, q̂⟩ and
        ``query`` is then ignored. Diversity is still measured on ``features``.
    Returns a LongTensor (k,) for (L, C) input or (B, k), on the features' device.
    """
    check_params({"ratio": ratio, "alpha": alpha, "tau": tau, "M": M, "beta": beta}, prefilter)
    single = features.dim() == 2
    x = check_features(features, check_finite=False)  # finiteness is checked on the norms below
    batch, length, width = x.shape
    q = check_query(query, batch)
    k = keep_count(ratio, length)
    if k >= length:
        check_features(x, check_finite=True)
        out = torch.arange(length, device=x.device).expand(batch, length).clone()
        return out[0] if single else out

    x = x.float()
    if relevance is not None:
        rel = relevance.reshape(1, -1) if relevance.dim() == 1 else relevance
        if rel.shape != (batch, length):
            raise ValueError(
                f"relevance.shape={tuple(relevance.shape)} is not allowed; expected ({batch}, {length}) or ({length},)"
            )
        q = None
    qn = None if q is None else _normalize(align_query(q.float(), width))  # (1, C) shared, or (B, C)
    if qn is not None:
        nonzero = qn.abs().amax(dim=1) > 0
        if not bool(nonzero.all()):
            if bool(nonzero.any()):  # rows with and without a query: each part alone, as each row alone
                out = torch.empty(batch, k, dtype=torch.long, device=x.device)
                for rows, rows_query in ((nonzero, q[nonzero]), (~nonzero, None)):
                    out[rows] = rediprune_select(x[rows], rows_query, ratio, alpha, tau, M=M, beta=beta,
                                                 prefilter=prefilter)
                return out[0] if single else out
            qn = None  # an all-zero query is no query
    with_query = qn is not None or relevance is not None
    # On CPU the reference greedy computes the k rows it picks (cpu_greedy); elsewhere rows come from a Gram.
    on_demand = with_query and prefilter == "reference" and x.device.type == "cpu"
    raw_relevance = None
    if on_demand:  # no Gram: norms (and relevance) in one pass over the features
        from rediprune.pruning.cpu_greedy import greedy_rows, norms_and_relevance  # numba: imported when used

        gram = None
        if qn is None:
            squared = norms_and_relevance(x, x.new_zeros(1, width))[0]
        else:
            squared, raw_relevance = norms_and_relevance(x, qn)
    elif prefilter == "reference" and tau > 0 and k < length // 2 and with_query:
        gram = None  # only the ~3k candidates' Gram will be needed
        squared = torch.linalg.vector_norm(x, dim=2).square_()
    else:
        gram = torch.bmm(x, x.transpose(1, 2))
        squared = gram.diagonal(dim1=1, dim2=2)  # ‖x_i‖² is the Gram's diagonal: no extra pass
    if not bool(torch.isfinite(squared).all()):
        check_features(x, check_finite=True)  # names the problem; finite but overflowing norms pass on
    inv_norm = inverse_norms(squared)
    if relevance is not None:  # relevance from another encoder (CLIP text vs patches), used as given
        s = rel.to(device=x.device, dtype=torch.float32)
    elif qn is not None:
        s = (_relevance(x, qn) if raw_relevance is None else raw_relevance).mul_(inv_norm)  # ⟨x_i, q̂⟩ / ‖x_i‖
    else:
        s = torch.zeros(batch, length, device=x.device)

    if prefilter == "paper":
        chosen = _paper_greedy(x, gram, inv_norm, s, with_query, k, float(alpha), float(tau), M, float(beta))
    else:
        order, valid = _reference_candidates(s, k, float(tau), with_query)
        if on_demand:
            cand = torch.arange(length).expand(batch, length) if order is None else order
            inv, sc = torch.gather(inv_norm, 1, cand), torch.gather(s, 1, cand)
            first = sc.masked_fill(~valid, _NEG_INF).argmax(dim=1) if valid is not None else sc.argmax(dim=1)
            picks = greedy_rows(x, cand, inv, sc * float(alpha), valid, first, k)
            chosen = torch.gather(cand, 1, picks)
        else:
            chosen = _gram_greedy(x, gram, inv_norm, s, with_query, order, valid, k, float(alpha))
    chosen = chosen.sort(dim=1).values
    return chosen[0] if single else chosen


@register
class ReDiPrune(Pruner):
    """ReDiPrune (this paper): per-frame relevance-diversity selection before the projector."""

    name = "rediprune"
    requires = frozenset({Need.QUERY})
    placement = Placement.PRE_PROJECTION
    per_frame = True
    frames_independent = True
    hyperparameters = frozenset({"ratio", "alpha", "tau", "M", "beta", "query"})

    def inert_hyperparameters(self, prefilter: str = "reference", query: str = "exponential") -> dict[str, str]:
        """SPEC §2.1: the reference pre-filter never reads M or β; SPEC §3 ``none``: relevance is 0, so
        α·s adds nothing and the τ pre-filter is off (and Algorithm 1 takes every remaining token)."""
        inert = super().inert_hyperparameters(prefilter, query)
        if prefilter == "reference":
            for name in ("M", "beta"):
                inert[name] = f"the reference pre-filter (pruner.prefilter=reference) never reads {name}; " \
                              "pruner.prefilter=paper does"
        if query == "none":
            inert["alpha"] = "query=none gives every token relevance 0, so alpha·relevance adds nothing"
            inert["tau"] = "query=none turns the tau pre-filter off"
            for name in ("M", "beta"):
                inert.setdefault(name, f"query=none: without relevance Algorithm 1 ignores {name}")
        return inert

    def keep_mask(
        self,
        features: torch.Tensor,
        params: PruneParams,
        *,
        query: torch.Tensor | None = None,
        relevance: torch.Tensor | None = None,
        frames_per_sample: Sequence[int] | None = None,
    ) -> torch.Tensor:
        if query is None and relevance is None:
            raise ValueError(
                "query=None is not allowed for pruner 'rediprune'; pass the prompt query "
                "(an all-zero vector for query strategy 'none') or a relevance (F, L) from another encoder"
            )
        x = check_features(features, check_finite=False)  # rediprune_select checks
        idx = rediprune_select(
            x, query, params.ratio, params.alpha, params.tau,
            M=params.M, beta=params.beta, prefilter=params.prefilter, relevance=relevance,
        )
        mask = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
        return mask.scatter_(1, idx, True)
