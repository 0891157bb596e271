"""ReDiPrune selection (SPEC §2): exactness against the slow literal loop, properties, bad input."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rediprune.pruning import PruneParams, align_query, get_pruner, keep_count, rediprune_select
from slow_reference import align, paper_frame, reference_frame

CASES = [  # (L, ratio, alpha, tau): both τ > 0 branches (k < L//2 and k ≥ L//2), τ ≤ 0, α = 0
    (24, 0.1, 0.5, 0.0),
    (24, 0.3, 0.5, 0.1),  # k = 7 < 12: top-3k candidates in relevance order
    (24, 0.6, 0.5, 0.1),  # k = 14 ≥ 12: threshold candidates in index order
    (24, 0.6, 0.5, 0.9),  # ... fewer than k pass: top-k fallback
    (31, 0.25, 0.0, 0.0),
    (31, 0.25, 2.0, -0.3),
    (17, 0.5, 1.0, 0.05),
    (40, 0.05, 0.5, 0.2),
]


def _frames(seed: int, batch: int, length: int, width: int = 16) -> torch.Tensor:
    return torch.randn(batch, length, width, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("length,ratio,alpha,tau", CASES)
@pytest.mark.parametrize("qwidth", [16, 64, 40, 6])  # equal, divisible, pooled, tiled (SPEC §2 align)
def test_reference_prefilter_matches_slow_loop(length, ratio, alpha, tau, qwidth):
    feats = _frames(length * 7 + qwidth, 4, length)
    query = torch.randn(qwidth, generator=torch.Generator().manual_seed(qwidth))
    got = rediprune_select(feats, query, ratio, alpha, tau)
    for b in range(4):
        assert got[b].tolist() == reference_frame(feats[b], query, ratio, alpha, tau)


@pytest.mark.parametrize("length,ratio,alpha,tau", CASES)
@pytest.mark.parametrize("M,beta", [(None, 3.0), (5, 1.0), (12, 2.5)])
def test_paper_prefilter_matches_slow_loop(length, ratio, alpha, tau, M, beta):
    feats = _frames(length + 3, 3, length)
    query = torch.randn(16, generator=torch.Generator().manual_seed(length))
    got = rediprune_select(feats, query, ratio, alpha, tau, M=M, beta=beta, prefilter="paper")
    for b in range(3):
        assert got[b].tolist() == paper_frame(feats[b], query, ratio, alpha, tau, M, beta)


def test_paper_and_reference_prefilters_differ():
    """SPEC §2.2: the literal cap disagrees with the reference on most inputs; both modes must be live."""
    feats = _frames(5, 8, 48)
    query = torch.randn(16, generator=torch.Generator().manual_seed(1))
    ref = rediprune_select(feats, query, 0.25, 0.5, 0.0)
    paper = rediprune_select(feats, query, 0.25, 0.5, 0.0, beta=1.0, prefilter="paper")
    assert not torch.equal(ref, paper)


def test_no_query_matches_slow_loop_and_uses_divprune_first_pick():
    feats = _frames(11, 3, 30)
    got = rediprune_select(feats, None, 0.2, 0.5, 0.3)  # τ is off without a query
    zero = rediprune_select(feats, torch.zeros(16), 0.2, 0.5, 0.3)
    assert torch.equal(got, zero)
    for b in range(3):
        x = torch.nn.functional.normalize(feats[b], dim=-1)
        d = 1 - x @ x.T
        d.fill_diagonal_(float("inf"))
        first = int(d.min(dim=1).values.argmax())
        assert first in got[b].tolist()
        assert got[b].tolist() == reference_frame(feats[b], None, 0.2, 0.5, 0.3)


def test_per_frame_queries_mix_query_and_no_query_rows():
    feats = _frames(3, 3, 20)
    q = torch.randn(3, 16, generator=torch.Generator().manual_seed(3))
    q[1] = 0.0
    for prefilter in ("reference", "paper"):
        got = rediprune_select(feats, q, 0.3, 0.5, 0.1, prefilter=prefilter)
        for b in range(3):
            alone = rediprune_select(feats[b], q[b], 0.3, 0.5, 0.1, prefilter=prefilter)
            assert torch.equal(got[b], alone)


def test_ties_go_to_the_earliest_candidate():
    # tokens 2 and 5 are identical: equal relevance and equal distances, so index 2 must win each tie
    feats = _frames(4, 1, 8)[0]
    feats[5] = feats[2]
    query = feats[2].clone()
    got = rediprune_select(feats, query, 0.125, 0.5)  # k = 1: the most relevant
    assert got.tolist() == [2]
    assert reference_frame(feats, query, 0.125, 0.5, 0.0) == [2]


def test_half_to_even_rounding_and_keep_all():
    assert keep_count(0.5, 5) == 2  # round(2.5) = 2
    assert keep_count(0.5, 7) == 4  # round(3.5) = 4
    assert keep_count(0.01, 10) == 1  # max(1, ·)
    feats = _frames(0, 2, 9)
    assert torch.equal(rediprune_select(feats, torch.randn(16), 1.0), torch.arange(9).expand(2, 9))
    assert rediprune_select(feats[0], None, 0.95).tolist() == list(range(9))  # round(8.55) = 9 ≥ L


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(1, 4),
    length=st.integers(1, 40),
    ratio=st.floats(0.01, 1.0),
    alpha=st.floats(0.0, 5.0),
    tau=st.floats(-1.0, 1.0),
    prefilter=st.sampled_from(["reference", "paper"]),
    seed=st.integers(0, 2**16),
)
def test_properties(batch, length, ratio, alpha, tau, prefilter, seed):
    feats = _frames(seed, batch, length, 8)
    query = torch.randn(8, generator=torch.Generator().manual_seed(seed + 1))
    got = rediprune_select(feats, query, ratio, alpha, tau, prefilter=prefilter)
    k = max(1, round(ratio * length))
    assert got.shape == (batch, min(k, length))
    assert got.dtype == torch.long
    for row in got:
        values = row.tolist()
        assert values == sorted(set(values))  # sorted and unique
        assert 0 <= values[0] and values[-1] < length


def test_batched_rows_equal_single_frame_calls():
    feats = _frames(9, 6, 50)
    query = torch.randn(32, generator=torch.Generator().manual_seed(9))
    for tau in (0.0, 0.1):
        batched = rediprune_select(feats, query, 0.2, 0.7, tau)
        for b in range(6):
            assert torch.equal(batched[b], rediprune_select(feats[b], query, 0.2, 0.7, tau))


def _near_duplicates(seed: int, frames: int, length: int, width: int = 1024) -> torch.Tensor:
    """Frames built from 6 prototype tokens plus 1e-6 noise: every choice is decided by rounding."""
    gen = torch.Generator().manual_seed(seed)
    protos = torch.randn(6, width, generator=gen)
    picks = torch.randint(0, 6, (frames, length), generator=gen)
    return protos[picks] + 1e-6 * torch.randn(frames, length, width, generator=gen)


@pytest.mark.parametrize("length", [64, 257])  # 257: Video-LLaVA's odd frame length (BLAS tail rows)
@pytest.mark.parametrize("tau", [0.0, 0.05])
def test_selection_does_not_depend_on_the_batch(length, tau):
    """A sample keeps the same tokens alone, in any batch, at any position, with any batch size.

    The adapter calls the pruner with one sample and a shared (Dq,) query when batch_size is 1 and with
    all samples' frames and per-frame (F, Dq) query rows otherwise; on near-duplicate tokens the two
    used to round relevance differently and flip picks.
    """
    pruner, params = get_pruner("rediprune"), PruneParams(ratio=0.25, alpha=0.5, tau=tau)
    samples = [_near_duplicates(seed, frames, length) for seed, frames in enumerate((2, 1, 3, 2))]
    gen = torch.Generator().manual_seed(99)
    queries = [torch.randn(4096, generator=gen) for _ in samples]
    alone = [pruner.keep_mask(x, params, query=q) for x, q in zip(samples, queries)]
    for batch in ([0, 1], [1, 0, 2], [3, 2, 1, 0], [2, 3], [1, 1]):
        feats = torch.cat([samples[b] for b in batch])
        rows = torch.cat([queries[b].expand(samples[b].shape[0], -1) for b in batch])
        masks = pruner.keep_mask(feats, params, query=rows).split([samples[b].shape[0] for b in batch])
        for b, mask in zip(batch, masks):
            assert torch.equal(mask, alone[b]), (batch, b)
    for x, q, mask in zip(samples, queries, alone):  # a frame alone, too
        for f in range(x.shape[0]):
            assert torch.equal(pruner.keep_mask(x[f : f + 1], params, query=q), mask[f : f + 1])


def test_very_large_alpha_is_top_k_relevance():
    feats = _frames(2, 3, 64)
    query = torch.randn(16, generator=torch.Generator().manual_seed(2))
    got = rediprune_select(feats, query, 0.25, alpha=1e6)
    s = torch.nn.functional.normalize(feats, dim=-1) @ torch.nn.functional.normalize(query, dim=0)
    top = s.topk(16, dim=1).indices.sort(dim=1).values
    assert torch.equal(got, top)


def test_alpha_zero_none_strategy_is_plain_max_min():
    """α = 0 without a query is textbook greedy max-min diversity (DivPrune's rule), not "no pruning"."""
    feats = _frames(6, 1, 40)[0]
    got = rediprune_select(feats, None, 0.2, alpha=0.0)
    assert got.numel() == 8  # pruning is never silently disabled at α = 0
    x = torch.nn.functional.normalize(feats, dim=-1)
    d = 1 - x @ x.T
    nearest = d + torch.diag(torch.full((40,), float("inf")))
    chosen = [int(nearest.min(dim=1).values.argmax())]
    while len(chosen) < 8:
        md = d[chosen].min(dim=0).values
        md[chosen] = -1
        chosen.append(int(md.argmax()))
    assert got.tolist() == sorted(chosen)


def test_alpha_zero_with_query_still_picks_most_relevant_first():
    feats = _frames(8, 1, 30)[0]
    query = torch.randn(16, generator=torch.Generator().manual_seed(8))
    got = rediprune_select(feats, query, 0.1, alpha=0.0)
    s = torch.nn.functional.normalize(feats, dim=-1) @ torch.nn.functional.normalize(query, dim=0)
    assert int(s.argmax()) in got.tolist()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_are_scored_in_fp32(dtype):
    feats = _frames(12, 2, 36).to(dtype)
    query = torch.randn(16, generator=torch.Generator().manual_seed(12)).to(dtype)
    got = rediprune_select(feats, query, 0.25, 0.5)
    assert torch.equal(got, rediprune_select(feats.float(), query.float(), 0.25, 0.5))


@pytest.mark.parametrize("dq,c", [(4096, 1024), (4096, 1000), (64, 1024), (1024, 1024), (7, 3)])
def test_align_query_matches_spec(dq, c):
    q = torch.randn(dq, generator=torch.Generator().manual_seed(dq + c))
    assert torch.allclose(align_query(q, c), align(q, c))
    assert align_query(q.expand(3, dq), c).shape == (3, c)


def test_pruner_registry_wraps_selection():
    feats = _frames(1, 2, 20)
    query = torch.randn(16, generator=torch.Generator().manual_seed(1))
    params = PruneParams(ratio=0.25, alpha=0.5)
    mask = get_pruner("rediprune").keep_mask(feats, params, query=query)
    assert mask.shape == (2, 20) and mask.dtype == torch.bool
    assert torch.equal(mask.nonzero()[:, 1].view(2, -1), rediprune_select(feats, query, 0.25, 0.5))
    with pytest.raises(ValueError, match="query=None"):
        get_pruner("rediprune").keep_mask(feats, params)


BAD = [
    (dict(ratio=0.0), "ratio"),
    (dict(ratio=1.5), "ratio"),
    (dict(ratio=-0.1), "ratio"),
    (dict(ratio=math.nan), "ratio"),
    (dict(tau=1.5), "tau"),
    (dict(tau=-2.0), "tau"),
    (dict(M=0), "M"),
    (dict(M=2.5), "M"),
    (dict(beta=0.5), "beta"),
    (dict(alpha=-1.0), "alpha"),
    (dict(alpha=math.inf), "alpha"),
    (dict(prefilter="fast"), "prefilter"),
]


@pytest.mark.parametrize("kwargs,name", BAD)
def test_bad_hyperparameters_name_the_parameter(kwargs, name):
    args = dict(ratio=0.1, alpha=0.5, tau=0.0)
    args.update(kwargs)
    ratio, alpha, tau = args.pop("ratio"), args.pop("alpha"), args.pop("tau")
    with pytest.raises(ValueError, match=rf"^{name}=.*(expected|allowed)"):
        rediprune_select(torch.randn(10, 8), torch.randn(8), ratio, alpha, tau, **args)


@pytest.mark.parametrize(
    "features,query,match",
    [
        (torch.randn(8), torch.randn(8), r"features\.shape"),
        (torch.randn(2, 3, 4, 8), torch.randn(8), r"features\.shape"),
        (torch.randn(0, 8), torch.randn(8), r"features\.shape=\(1, 0, 8\).*non-empty"),
        (torch.randn(2, 0, 8), torch.randn(8), r"non-empty"),
        (torch.full((4, 8), math.nan), torch.randn(8), r"features=.*non-finite"),
        (torch.tensor([[1.0, math.inf], [0.0, 1.0]]), torch.randn(2), r"features=.*non-finite"),
        (torch.randn(4, 8), torch.tensor([1.0, math.nan]), r"query=.*non-finite"),
        (torch.randn(3, 4, 8), torch.randn(2, 8), r"query\.shape"),
        (torch.randn(4, 8), torch.randn(2, 2, 8), r"query\.shape"),
        (torch.randn(4, 8), torch.zeros(0), r"query\.shape"),
        (torch.randint(0, 5, (4, 8)), torch.randn(8), r"features\.dtype"),
    ],
)
def test_bad_tensors_name_the_parameter(features, query, match):
    with pytest.raises(ValueError, match=match):
        rediprune_select(features, query, 0.5)


def test_unknown_pruner_lists_allowed():
    with pytest.raises(ValueError, match=r"pruner='fastv'.*allowed: .*rediprune"):
        get_pruner("fastv")


@pytest.mark.parametrize("alpha", [0.0, 0.5, 3.0])
@pytest.mark.parametrize("masked", [False, True])
def test_accelerator_greedy_picks_as_the_row_by_row_loop(alpha, masked):
    """The GPU path (every dissimilarity row formed at once) must pick bit for bit what the CPU loop
    picks, near-duplicate tokens included; run on CPU tensors here, on CUDA in test_cuda_matches_cpu."""
    from rediprune.pruning.selection import _greedy, _greedy_dense

    gen = torch.Generator().manual_seed(7)
    x = torch.randn(3, 64, 32, generator=gen)
    x[:, 1::2] = x[:, ::2] + 1e-6 * torch.randn(3, 32, 32, generator=gen)  # near duplicates
    gram = torch.bmm(x, x.transpose(1, 2))
    inv = gram.diagonal(dim1=1, dim2=2).rsqrt()
    sc = torch.randn(3, 64, generator=gen)
    first = torch.tensor([0, 17, 63])
    valid = None
    if masked:
        valid = torch.rand(3, 64, generator=gen) > 0.3
        valid[torch.arange(3), first] = True
    expected = _greedy(gram.clone(), inv, sc, valid, first, 12, alpha)
    got = _greedy_dense(gram.clone(), inv, sc * alpha if alpha else None, valid, first, 12)
    assert torch.equal(got, expected)
    assert len(set(got[0].tolist())) == 12  # a pick is never repeated


@pytest.mark.parametrize("alpha", [0.0, 0.5, 3.0])
@pytest.mark.parametrize("subset", [False, True])
def test_cpu_on_demand_rows_pick_as_the_gram_loop(alpha, subset):
    """The CPU kernel (rows computed when picked, per frame, compiled) picks what the Gram-row loop picks:
    same candidate order, validity, first pick, α-bonus and tie rule (random tokens: no rounding ties)."""
    from rediprune.pruning.cpu_greedy import greedy_rows, norms_and_relevance
    from rediprune.pruning.selection import _greedy, inverse_norms

    gen = torch.Generator().manual_seed(21)
    x = torch.randn(5, 64, 40, generator=gen)
    q = torch.randn(1, 40, generator=gen)
    squared, dots = norms_and_relevance(x, q)
    assert torch.allclose(squared, (x * x).sum(2), rtol=1e-5)
    assert torch.allclose(dots, x @ q[0], rtol=1e-4, atol=1e-4)
    size = 20 if subset else 64
    cand = torch.stack([torch.randperm(64, generator=gen)[:size] for _ in range(5)])
    xc = torch.gather(x, 1, cand.unsqueeze(2).expand(-1, -1, 40))
    inv = inverse_norms((xc * xc).sum(2))
    sc = torch.randn(5, size, generator=gen)
    valid = torch.rand(5, size, generator=gen) > 0.3
    first = torch.tensor([0, 3, 7, size - 1, 5])
    valid[torch.arange(5), first] = True
    expected = _greedy(torch.bmm(xc, xc.transpose(1, 2)), inv, sc, valid, first, 8, alpha)
    got = greedy_rows(x, cand, inv, sc * alpha, valid, first, 8)
    assert torch.equal(got, expected)
    assert all(valid[b, got[b]].all() for b in range(5))  # only valid candidates are picked
