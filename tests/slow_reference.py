"""Slow, literal implementations of SPEC §2 and §3, written from the spec text for exactness tests.

One frame at a time, full L×L dissimilarity matrix, Python lists and loops: obviously-correct, not fast.
"""
from __future__ import annotations

import math

import torch


def norm(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def align(q: torch.Tensor, c: int) -> torch.Tensor:
    dq = q.shape[0]
    if dq == c:
        return q
    if dq > c and dq % c == 0:
        return q.view(c, dq // c).mean(1)
    if dq > c:
        return torch.nn.functional.adaptive_avg_pool1d(q.view(1, 1, dq), c).view(c)
    return torch.cat([q] * math.ceil(c / dq))[:c]


def first_max(values: list[float], cand: list[int]) -> int:
    """The candidate (in cand order) whose value is largest; earliest in cand order on ties."""
    best, best_v = cand[0], values[cand[0]]
    for i in cand[1:]:
        if values[i] > best_v:
            best, best_v = i, values[i]
    return best


def top_by_relevance(s: list[float], pool: list[int], n: int) -> list[int]:
    """The n most relevant tokens of pool, descending relevance, earlier index first on ties."""
    return sorted(pool, key=lambda i: (-s[i], i))[:n]


def reference_frame(e, q, ratio, alpha, tau):
    """SPEC §2.1 for one frame (e: (L, C), q: (Dq,) or None)."""
    L, C = e.shape
    x = norm(e.float())
    k = max(1, round(ratio * L))
    if k >= L:
        return list(range(L))
    D = (1 - x @ x.T).tolist()
    no_query = q is None or float(q.abs().max()) == 0.0
    if no_query:
        s = [0.0] * L
        cand = list(range(L))
        nearest = [min(D[i][j] for j in range(L) if j != i) for i in range(L)]
        first = first_max(nearest, cand)
    else:
        s = (x @ norm(align(q.float(), C))).tolist()
        if tau > 0:
            if k < L // 2:
                cand = top_by_relevance(s, list(range(L)), min(L, max(3 * k, k + 1)))
            else:
                cand = [i for i in range(L) if s[i] >= tau]
                if len(cand) < k:
                    cand = top_by_relevance(s, list(range(L)), k)
        else:
            cand = list(range(L))
        first = first_max(s, cand)
    chosen = [first]
    while len(chosen) < k:
        rest = [i for i in cand if i not in chosen]
        score = {i: min(D[u][i] for u in chosen) + alpha * s[i] for i in rest}
        chosen.append(first_max([score.get(i, 0.0) for i in range(L)], rest))
    return sorted(chosen)


def paper_frame(e, q, ratio, alpha, tau, M, beta):
    """SPEC §2.2 (Algorithm 1 literally) for one frame; β·K_rem floored; no query → all remaining."""
    L, C = e.shape
    x = norm(e.float())
    k = max(1, round(ratio * L))
    if k >= L:
        return list(range(L))
    D = (1 - x @ x.T).tolist()
    no_query = q is None or float(q.abs().max()) == 0.0
    s = [0.0] * L if no_query else (x @ norm(align(q.float(), C))).tolist()
    cap = L if M is None else M
    R = list(range(L))
    S: list[int] = []
    while len(S) < k:
        k_rem = k - len(S)
        m_rem = max(k_rem, min(cap, len(R)))
        if no_query:
            cand = list(R)
        else:
            if tau <= 0:
                cand = list(R)
            else:
                cand = [i for i in R if s[i] >= tau]
                if len(cand) < k_rem:
                    cand = top_by_relevance(s, R, m_rem)
            cand = top_by_relevance(s, cand, min(len(cand), m_rem, math.floor(beta * k_rem)))
        if not S:
            if no_query:
                nearest = [min(D[i][j] for j in range(L) if j != i) for i in range(L)]
                pick = first_max(nearest, cand)
            else:
                pick = first_max(s, cand)
        else:
            score = [0.0] * L
            for i in cand:
                score[i] = min(D[u][i] for u in S) + alpha * s[i]
            pick = first_max(score, cand)
        S.append(pick)
        R.remove(pick)
    return sorted(S)


def query_loop(ids, mask, weight, visual_ids, strategy, max_tokens=128):
    """SPEC §3 for one prompt: ids (T,), mask (T,), weight (V, D)."""
    toks = [int(t) for t, m in zip(ids.tolist(), mask.tolist()) if m]
    last = max((j for j, t in enumerate(toks) if t in visual_ids), default=-1)
    tail = toks[last + 1 :][-max_tokens:]
    if strategy == "none" or not tail:
        return torch.zeros(weight.shape[1])
    e = weight[torch.tensor(tail)].float()
    n = len(tail)
    t = torch.linspace(0, 1, n)
    if strategy == "average":
        return e.mean(0)
    if strategy == "middle_peak":
        w = torch.exp(-((t - 0.5) ** 2) / (2 * 0.25**2))
        return (w / w.sum()) @ e
    en = norm(e)
    sim = en @ en.T
    a = torch.softmax(sim - sim.max(dim=1, keepdim=True).values, dim=1)
    c = a @ e
    if strategy == "self_attention":
        return c.mean(0)
    w = torch.exp(3 * t)
    return (w / w.sum()) @ c
