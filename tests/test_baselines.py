"""Baseline pruners (SPEC §4) against slow, obviously-correct references."""
from __future__ import annotations

import itertools

import pytest
import torch

from rediprune.pruning import Need, Placement, PruneParams, get_pruner, keep_count
from rediprune.pruning.baselines import (
    clip_relevance,
    conditional_dpp_select,
    normalize_relevance,
)

NAMES = ("divprune", "cdpruner", "random", "none")


def _relevance_for(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return torch.randn(x.shape[:2], generator=torch.Generator().manual_seed(seed))


def _mask(name: str, x: torch.Tensor, ratio: float, **kw) -> torch.Tensor:
    relevance = _relevance_for(x) if name == "cdpruner" else None
    return get_pruner(name).keep_mask(x, PruneParams(ratio=ratio, **kw), relevance=relevance)


# ------------------------------------------------------------------------------------- interface


def test_registry_attributes():
    expected = {
        "divprune": (frozenset(), Placement.POST_PROJECTION, False),
        "cdpruner": (frozenset({Need.CLIP_RELEVANCE}), Placement.POST_PROJECTION, True),
        "random": (frozenset(), Placement.PRE_PROJECTION, True),
        "none": (frozenset(), Placement.PRE_PROJECTION, True),
    }
    for name, (requires, placement, per_frame) in expected.items():
        pruner = get_pruner(name)
        assert (pruner.name, pruner.requires, pruner.placement, pruner.per_frame) == (
            name, requires, placement, per_frame,
        )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("ratio", [0.05, 0.3, 1.0])
def test_mask_shape_and_count_match_token_accounting(name, ratio):
    x = torch.randn(3, 20, 8, generator=torch.Generator().manual_seed(1))
    mask = _mask(name, x, ratio)
    assert mask.dtype == torch.bool and mask.shape == (3, 20) and mask.device == x.device
    pruner = get_pruner(name)
    assert int(mask.sum()) == pruner.kept_per_frame(3, 20, PruneParams(ratio=ratio))
    if name not in ("divprune", "none"):
        assert mask.sum(dim=1).tolist() == [keep_count(ratio, 20)] * 3


@pytest.mark.parametrize("name", NAMES)
def test_bad_features_are_rejected(name):
    x = torch.randn(2, 5, 4)
    x[1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="^features="):
        _mask(name, x, 0.5)
    with pytest.raises(ValueError, match=r"^features\.shape="):
        _mask(name, torch.randn(1, 2, 5, 4), 0.5)


@pytest.mark.parametrize("name", NAMES)
def test_half_precision_input(name):
    x = torch.randn(2, 16, 8, generator=torch.Generator().manual_seed(2))
    assert torch.equal(_mask(name, x.bfloat16(), 0.25), _mask(name, x.bfloat16().float(), 0.25))


# ------------------------------------------------------------------------------------- DivPrune


def _divprune_reference(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """SPEC §4 DivPrune, written as plainly as possible in float64 over all frames' tokens."""
    frames, length, _ = x.shape
    tokens = torch.nn.functional.normalize(x.reshape(frames * length, -1).double(), dim=-1)
    n = tokens.shape[0]
    dist = [[1.0 - float(tokens[i] @ tokens[j]) for j in range(n)] for i in range(n)]
    k = keep_count(ratio, n)
    first = max(range(n), key=lambda i: (min(dist[i][j] for j in range(n) if j != i), -i))
    chosen = [first]
    while len(chosen) < k:
        rest = [j for j in range(n) if j not in chosen]
        chosen.append(max(rest, key=lambda j: (min(dist[u][j] for u in chosen), -j)))
    mask = torch.zeros(frames * length, dtype=torch.bool)
    mask[chosen] = True
    return mask.view(frames, length)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.6])
def test_divprune_matches_reference(seed, ratio):
    x = torch.randn(3, 10, 6, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(_mask("divprune", x, ratio), _divprune_reference(x, ratio))


def test_divprune_budget_is_over_the_whole_sample():
    # frame 0: ten copies of one token; frame 1: ten distinct tokens. One budget of round(0.3·20) = 6
    # over both frames: a diverse set takes at most one copy from frame 0 and the rest from frame 1.
    gen = torch.Generator().manual_seed(3)
    x = torch.cat([torch.randn(1, 1, 8, generator=gen).expand(1, 10, 8), torch.randn(1, 10, 8, generator=gen)])
    mask = _mask("divprune", x, 0.3)
    assert int(mask.sum()) == 6
    assert int(mask[0].sum()) <= 1 and int(mask[1].sum()) >= 5


# ------------------------------------------------------------------------------------- CDPruner


def _original_normalisation(rel: torch.Tensor) -> torch.Tensor:
    """The original's min-max over every token of the sample it is given, 1e-6 in the numerator."""
    r = rel.double()
    return (r - r.min() + 1e-6) / (r.max() - r.min())


def _kernel(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Conditional DPP kernel diag(q)·S·diag(q) of one frame in float64 (q already normalised)."""
    xn = torch.nn.functional.normalize(x.double(), dim=-1)
    q = q.double()
    return q[:, None] * (xn @ xn.T) * q[None, :]


def _original_cdpruner(x: torch.Tensor, rel: torch.Tensor, k: int) -> tuple[list[list[int]], float]:
    """CDPruner's published algorithm for one sample, written out literally and slowly in float64.

    The sample's frames are the rows of the original's batch: features normalised, similarity per frame,
    relevance min-max normalised over all frames at once ((r − min + 1e-6) / (max − min)), kernel
    q_i·S_ij·q_j, then per frame the greedy MAP loop with incremental Cholesky rows (Chen et al. 2018):
    pick argmax of the residual gains, new row e = (K[j] − Σ_t c_t[j]·c_t) / √d²_j, d² −= e², d²_j = −∞.
    Also returns the smallest gap between the best and the runner-up gain over all steps, so a test
    can check that fp32 rounding cannot flip a pick.
    """
    q = _original_normalisation(rel)
    picks, gap = [], float("inf")
    for f in range(x.shape[0]):
        kernel = _kernel(x[f], q[f])
        d2 = kernel.diagonal().clone()
        rows: list[torch.Tensor] = []
        chosen: list[int] = []
        for _ in range(k):
            ranked = d2.sort(descending=True).values
            gap = min(gap, float(ranked[0] - ranked[1]))
            j = int(d2.argmax())
            chosen.append(j)
            e = kernel[j].clone()
            for c in rows:
                e -= c[j] * c
            e /= d2[j].sqrt()
            rows.append(e)
            d2 -= e * e
            d2[j] = float("-inf")
        picks.append(sorted(chosen))
    return picks, gap


def _greedy_logdet(kernel: torch.Tensor, k: int) -> tuple[list[int], list[float]]:
    """Greedy log-det maximisation by brute force, ties (within 1e-9) to the lowest index.

    Also returns, per step, the gap between the best and the runner-up score (0 for a tie).
    """
    chosen: list[int] = []
    gaps: list[float] = []
    for _ in range(k):
        scores = {}
        for j in range(kernel.shape[0]):
            if j not in chosen:
                idx = chosen + [j]
                sign, logdet = torch.linalg.slogdet(kernel[idx][:, idx])
                scores[j] = float(logdet) if sign > 0 else float("-inf")
        best = max(scores.values())
        pick = min(j for j, v in scores.items() if v >= best - 1e-9)
        gaps.append(best - max(v for j, v in scores.items() if j != pick))
        chosen.append(pick)
    return sorted(chosen), gaps


def _sample(seed: int, frames: int, length: int = 24, width: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    # frames differ in their relevance range, so per-frame and whole-sample normalisation differ
    scale = torch.rand(frames, 1, generator=gen) * 3 + 0.2
    return torch.randn(frames, length, width, generator=gen), torch.randn(frames, length, generator=gen) * scale


def _rows(mask: torch.Tensor) -> list[list[int]]:
    return [torch.nonzero(m).squeeze(1).tolist() for m in mask]


@pytest.mark.parametrize("seed", range(6))
def test_cdpruner_greedy_map_equals_greedy_logdet(seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 12, 16, generator=gen)
    rel = torch.randn(3, 12, generator=gen)
    q = normalize_relevance(rel)
    got = conditional_dpp_select(x, q, 5)
    for f in range(3):
        expected, gaps = _greedy_logdet(_kernel(x[f], q[f]), 5)
        assert min(gaps) > 1e-4  # no near-tie, so fp32 vs fp64 cannot flip a pick
        assert got[f].tolist() == expected
    mask = get_pruner("cdpruner").keep_mask(x, PruneParams(ratio=5 / 12), relevance=rel)
    assert _rows(mask) == got.tolist()


@pytest.mark.parametrize("seed", range(3))
def test_cdpruner_k1_is_the_exhaustive_best_singleton(seed):
    gen = torch.Generator().manual_seed(seed)
    x, rel = torch.randn(2, 12, 16, generator=gen), torch.randn(2, 12, generator=gen)
    q = normalize_relevance(rel)
    got = conditional_dpp_select(x, q, 1)
    for f in range(2):
        kernel = _kernel(x[f], q[f])
        best = max(itertools.combinations(range(12), 1), key=lambda s: float(torch.det(kernel[list(s)][:, list(s)])))
        assert got[f].tolist() == list(best)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("frames,ratio", [(1, 0.25), (3, 0.25), (4, 0.1)])
def test_cdpruner_matches_the_original_on_multi_frame_samples(seed, frames, ratio):
    x, rel = _sample(seed, frames)
    k = keep_count(ratio, 24)
    expected, gap = _original_cdpruner(x, rel, k)
    assert gap > 1e-5  # no near-tie: fp32 here vs fp64 there cannot flip a pick
    mask = get_pruner("cdpruner").keep_mask(x, PruneParams(ratio=ratio), relevance=rel)
    assert _rows(mask) == expected


def test_cdpruner_normalises_over_the_whole_sample_not_per_frame():
    """The original's min/max run over all frames of the sample; per frame would change choices."""
    differ = 0
    for seed in range(8):
        x, rel = _sample(seed, 4)
        whole = conditional_dpp_select(x, normalize_relevance(rel), 6)
        per_frame = conditional_dpp_select(x, torch.cat([normalize_relevance(r[None]) for r in rel]), 6)
        differ += int((whole != per_frame).any(dim=1).sum())
    assert differ >= 4  # the distinction is live on these inputs (the issue saw 49 of 192 frames)


def test_cdpruner_mixed_batch_equals_each_sample_alone_and_the_original():
    pruner, params = get_pruner("cdpruner"), PruneParams(ratio=0.25)
    samples = [_sample(20 + i, frames) for i, frames in enumerate((2, 1, 3, 2))]
    k = keep_count(0.25, 24)
    alone = []
    for x, rel in samples:
        alone.append(pruner.keep_mask(x, params, relevance=rel))
        expected, gap = _original_cdpruner(x, rel, k)
        assert gap > 1e-5 and _rows(alone[-1]) == expected
    for batch in ([0, 1, 2, 3], [3, 1], [2, 0, 2], [1]):
        counts = [samples[b][0].shape[0] for b in batch]
        feats = torch.cat([samples[b][0] for b in batch])
        rel = torch.cat([samples[b][1] for b in batch])
        masks = pruner.keep_mask(feats, params, relevance=rel, frames_per_sample=counts).split(counts)
        for b, mask in zip(batch, masks):
            assert torch.equal(mask, alone[b]), (batch, b)
    # an empty (text-only) sample in the counts is allowed; counts that do not cover the rows are not
    x, rel = samples[0]
    assert torch.equal(pruner.keep_mask(x, params, relevance=rel, frames_per_sample=[0, 2, 0]), alone[0])
    with pytest.raises(ValueError, match=r"^frames_per_sample=\[1, 2\] is not allowed"):
        pruner.keep_mask(x, params, relevance=rel, frames_per_sample=[1, 2])


def test_normalize_relevance_is_the_originals_formula():
    gen = torch.Generator().manual_seed(8)
    rel = torch.randn(3, 24, generator=gen) * torch.tensor([[1.0], [10.0], [0.1]])
    got = normalize_relevance(rel)
    span = float(rel.max() - rel.min())
    assert torch.allclose(got.double(), _original_normalisation(rel), rtol=1e-6, atol=1e-7)
    # one min and one max for the whole sample; the 1e-6 lifts the minimum off zero
    assert float(got.min()) == pytest.approx(1e-6 / span, rel=1e-3) and float(got.max()) == pytest.approx(1.0)
    assert float(got[2].max()) < 0.5  # the low-range frame is not stretched to [0, 1] on its own
    two = normalize_relevance(rel, [1, 2])  # per sample: each sample spans its own range
    assert torch.allclose(two[:1], normalize_relevance(rel[:1])) and torch.allclose(two[1:], normalize_relevance(rel[1:]))
    # a shift of the whole sample leaves the choice unchanged
    x = torch.randn(3, 24, 8, generator=gen)
    pruner, params = get_pruner("cdpruner"), PruneParams(ratio=0.25)
    assert torch.equal(pruner.keep_mask(x, params, relevance=rel), pruner.keep_mask(x, params, relevance=rel + 5.0))


def test_cdpruner_relevance_changes_the_choice():
    gen = torch.Generator().manual_seed(9)
    x, rel = torch.randn(1, 24, 8, generator=gen), torch.randn(1, 24, generator=gen)
    pruner, params = get_pruner("cdpruner"), PruneParams(ratio=0.25)
    assert not torch.equal(pruner.keep_mask(x, params, relevance=rel), pruner.keep_mask(x, params, relevance=-rel))


def test_cdpruner_constant_relevance_is_a_plain_dpp():
    gen = torch.Generator().manual_seed(10)
    x = torch.randn(1, 12, 16, generator=gen)
    got = conditional_dpp_select(x, normalize_relevance(torch.full((1, 12), 0.3)), 5)
    xn = torch.nn.functional.normalize(x[0].double(), dim=-1)
    expected, gaps = _greedy_logdet(xn @ xn.T, 5)
    assert gaps[0] < 1e-9 and min(gaps[1:]) > 1e-4  # equal diagonals: the first pick is a tie → index 0
    assert got[0].tolist() == expected and expected[0] == 0


def test_cdpruner_rank_deficient_kernel_still_keeps_k_distinct_tokens():
    # 2-D features: the kernel has rank ≤ 2, so after two picks no gain is left
    gen = torch.Generator().manual_seed(11)
    x, rel = torch.randn(2, 12, 2, generator=gen), torch.randn(2, 12, generator=gen)
    idx = conditional_dpp_select(x, normalize_relevance(rel), 6)
    for f in range(2):
        assert len(set(idx[f].tolist())) == 6
        assert idx[f].tolist() == sorted(idx[f].tolist())
        expected, _ = _greedy_logdet(_kernel(x[f], normalize_relevance(rel)[f]), 2)
        assert set(expected) <= set(idx[f].tolist())


def test_cdpruner_needs_relevance():
    x = torch.randn(2, 10, 4)
    with pytest.raises(ValueError, match="^relevance=None is not allowed"):
        get_pruner("cdpruner").keep_mask(x, PruneParams(ratio=0.3))
    with pytest.raises(ValueError, match=r"^relevance\.shape=\(2, 9\) is not allowed"):
        get_pruner("cdpruner").keep_mask(x, PruneParams(ratio=0.3), relevance=torch.randn(2, 9))


def test_clip_relevance_is_minus_mean_cosine():
    gen = torch.Generator().manual_seed(12)
    img, txt = torch.randn(2, 5, 6, generator=gen), torch.randn(3, 6, generator=gen)
    rel = clip_relevance(img * 7.0, txt * 0.2)  # scale-free: embeddings are normalised first
    cos = torch.nn.functional.cosine_similarity
    for f, i in itertools.product(range(2), range(5)):
        expected = -sum(float(cos(img[f, i], txt[m], dim=0)) for m in range(3)) / 3
        assert float(rel[f, i]) == pytest.approx(expected, abs=1e-6)
    assert clip_relevance(img[0], txt).shape == (1, 5)
    with pytest.raises(ValueError, match="same E"):
        clip_relevance(img, torch.randn(3, 5))


# ------------------------------------------------------------------------------------- random, none


def test_random_is_seeded_and_uniform():
    x = torch.zeros(8, 10, 4)
    pruner = get_pruner("random")
    first = pruner.keep_mask(x, PruneParams(ratio=0.3, seed=5))
    assert torch.equal(first, pruner.keep_mask(x, PruneParams(ratio=0.3, seed=5)))
    assert not torch.equal(first, pruner.keep_mask(x, PruneParams(ratio=0.3, seed=6)))
    assert len({tuple(row.tolist()) for row in first}) > 1  # frames draw independently
    counts = sum(pruner.keep_mask(x, PruneParams(ratio=0.3, seed=s)).sum(dim=0) for s in range(250))
    # 250 seeds × 8 frames × 3 of 10 positions: 600 expected per position, sd ≈ 20
    assert int(counts.min()) > 500 and int(counts.max()) < 700


def test_none_keeps_everything():
    x = torch.randn(3, 7, 4)
    pruner = get_pruner("none")
    for ratio in (0.01, 0.5, 1.0):
        assert bool(pruner.keep_mask(x, PruneParams(ratio=ratio)).all())
        assert pruner.kept_per_frame(3, 7, PruneParams(ratio=ratio)) == 21


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu(name):
    x = torch.randn(4, 64, 32, generator=torch.Generator().manual_seed(13))
    mask = _mask(name, x.cuda(), 0.2)
    assert mask.device.type == "cuda"
    assert torch.equal(mask.cpu(), _mask(name, x, 0.2))


@pytest.mark.parametrize("k", [1, 5, 30])
def test_cdpruner_accelerator_loop_picks_as_the_cpu_loop(k):
    """The GPU path of the greedy MAP (kernel formed once, rows gathered) picks the tokens the CPU loop
    picks; run on CPU tensors here, on CUDA in test_cuda_matches_cpu."""
    from rediprune.pruning.baselines import _greedy_map_dense, conditional_dpp_select
    from rediprune.pruning.selection import inverse_norms

    gen = torch.Generator().manual_seed(5)
    x = torch.randn(4, 48, 64, generator=gen)  # full rank: no pick in the degenerate no-gain regime
    q = torch.rand(4, 48, generator=gen)
    gram = torch.bmm(x, x.transpose(1, 2))
    squared = gram.diagonal(dim1=1, dim2=2)
    picks = _greedy_map_dense(gram, q * inverse_norms(squared), torch.where(squared > 0, q * q, 0.0),
                              torch.zeros(4, k, 48), k)
    assert torch.equal(picks.sort(dim=1).values, conditional_dpp_select(x, q, k))
    assert all(len(set(row)) == k for row in picks.tolist())
