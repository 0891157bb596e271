"""The CPU kernel of ReDiPrune's greedy loop: rows of the dissimilarity matrix computed only when picked.

Usage (from :func:`rediprune.pruning.selection.rediprune_select`)::

    picks = greedy_rows(x, cand, inv, bonus, start, first, k)   # (B, k) positions in candidate order

Why a compiled loop (numba) and not torch or numpy: the greedy pick is sequential (pick t decides which
row pick t+1 needs), so a framework runs it as k rounds of small operations over all frames. Either each
round reads every frame's features again (B·L·C floats per pick, from L3 or memory) or the rows come
from a full Gram matrix formed up front (L²·C multiply-adds for the k·L·C that are ever used); on this
project's 2-core CPU both cost about one batched Gram at 32×144×1024 (7 ms) and the Python rounds add
more. Compiled, one thread runs one frame's whole loop while its features (L·C·4 bytes: 0.6 MB at
144×1024) stay in its core's L2 cache, so the k row products run near cache bandwidth, and frames run
in parallel (``prange``). Neither torch nor numpy offers a greedy max-min selection; numba is the tool
made for compiling such a loop.

Exactness: every frame is computed alone, by one thread, with the same compiled code whatever the
batch, so its picks are bitwise the same alone, in any batch and with any batch size. The row products
are fp32 dot products whose sum order numba may reassociate into vector lanes (``fastmath`` reassoc and
contract flags on the dot product only; no NaN/inf assumptions anywhere); the order is fixed by the
compiled code, not by the data's position in memory.

Threads: the ``workqueue`` layer, because numba's OpenMP layer measured 3× slower here next to torch's
own OpenMP threads; it is not re-entrant, so launches are serialised by a lock. The thread count follows
``torch.get_num_threads()``. Compiled code is cached on disk (``cache=True``): the first call on a
machine compiles for a few seconds, later processes load it.
"""
from __future__ import annotations

import threading

import numba
import numpy as np
import torch

numba.config.THREADING_LAYER = "workqueue"
_LAUNCH = threading.Lock()


@numba.njit(fastmath={"reassoc", "contract"}, cache=True, nogil=True)
def _dot_row(x, cand, j, out):  # pragma: no cover - compiled
    """out[i] = ⟨x[cand[i]], x[cand[j]]⟩ for every candidate i (raw features, fp32)."""
    width = x.shape[1]
    pivot = x[cand[j]]
    for i in range(cand.shape[0]):
        row = x[cand[i]]
        acc = np.float32(0.0)
        for c in range(width):
            acc += row[c] * pivot[c]
        out[i] = acc


@numba.njit(fastmath={"reassoc", "contract"}, parallel=True, cache=True)
def _norms_and_dots(x, query, squared, dots):  # pragma: no cover - compiled
    """squared[b, i] = ‖x[b, i]‖², dots[b, i] = ⟨x[b, i], query[b or 0]⟩, in one pass over the features."""
    width = x.shape[2]
    shared = query.shape[0] == 1
    for b in numba.prange(x.shape[0]):
        q = query[0] if shared else query[b]
        for i in range(x.shape[1]):
            row = x[b, i]
            sq = np.float32(0.0)
            dot = np.float32(0.0)
            for c in range(width):
                sq += row[c] * row[c]
                dot += row[c] * q[c]
            squared[b, i] = sq
            dots[b, i] = dot


@numba.njit(cache=True, nogil=True)
def _frame(x, cand, inv, bonus, score, first, picks):  # pragma: no cover - compiled
    """One frame's greedy loop; ``score`` starts at +inf (valid) or −inf (invalid) and is overwritten.

    E[j, i] = 1 − (G[j, i]·inv_j)·inv_i + bonus_i; score_i = min over picks j of E[j, i]; a pick's own
    entry is −inf; the next pick is the first maximum (``np.argmax``), as in the torch loop.
    """
    size = cand.shape[0]
    k = picks.shape[0]
    gram_row = np.empty(size, np.float32)
    one = np.float32(1.0)
    j = first
    for step in range(k):
        picks[step] = j
        if step == k - 1:
            break
        _dot_row(x, cand, j, gram_row)
        inv_j = inv[j]
        for i in range(size):
            e = one - gram_row[i] * inv_j * inv[i] + bonus[i]
            if e < score[i] or e != e:  # element-wise minimum, NaN propagating like np.minimum
                score[i] = e
        score[j] = -np.inf
        j = np.argmax(score)


@numba.njit(parallel=True, cache=True)
def _greedy_frames(x, cand, inv, bonus, score, first, k):  # pragma: no cover - compiled
    picks = np.empty((x.shape[0], k), np.int64)
    for b in numba.prange(x.shape[0]):
        _frame(x[b], cand[b], inv[b], bonus[b], score[b], first[b], picks[b])
    return picks


def _launch(kernel, *args):
    with _LAUNCH:
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
        return kernel(*args)


def norms_and_relevance(x: torch.Tensor, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared norms ‖x_i‖² and raw relevance ⟨x_i, q⟩ (both (B, L)) of fp32 features x (B, L, C), one pass.

    ``query`` is (1, C) shared by all frames or (B, C). Per frame, as the greedy loop: a frame's values do
    not depend on the batch. (torch's ``vector_norm`` over (B, L, C) alone took 0.5-7 ms on the same
    number of floats depending on the shape; one fused pass reads the features once.)
    """
    squared = np.empty(tuple(x.shape[:2]), np.float32)
    dots = np.empty_like(squared)
    _launch(_norms_and_dots, x.contiguous().numpy(), query.contiguous().numpy(), squared, dots)
    return torch.from_numpy(squared), torch.from_numpy(dots)


def greedy_rows(
    x: torch.Tensor,
    cand: torch.Tensor,
    inv: torch.Tensor,
    bonus: torch.Tensor,
    valid: torch.Tensor | None,
    first: torch.Tensor,
    k: int,
) -> torch.Tensor:
    """Greedy max-min + bonus over each frame's candidates; returns picked positions (B, k) in ``cand``.

    x: (B, L, C) fp32 raw features; cand: (B, P) token indices in candidate order; inv: (B, P) inverse
    norms and bonus: (B, P) α·relevance, both in candidate order; valid: (B, P) or None (all valid);
    first: (B,) the first pick's position.
    """
    score = np.full(tuple(cand.shape), np.inf, np.float32)
    if valid is not None:
        score[~valid.numpy()] = -np.inf
    arrays = (
        x.contiguous().numpy(), cand.contiguous().numpy(), inv.contiguous().numpy(),
        bonus.contiguous().numpy(), score, first.contiguous().numpy(),
    )
    return torch.from_numpy(_launch(_greedy_frames, *arrays, k))
