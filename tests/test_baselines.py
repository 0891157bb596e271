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


def _kernel(x: torch.Tensor, rel: torch.Tensor) -> torch.Tensor:
    """Conditional DPP kernel of one frame in float64, with plain min-max relevance (no eps)."""
    xn = torch.nn.functional.normalize(x.double(), dim=-1)
    r = rel.double()
    q = (r - r.min()) / (r.max() - r.min())
    return q[:, None] * (xn @ xn.T) * q[None, :]


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


@pytest.mark.parametrize("seed", range(6))
def test_cdpruner_greedy_map_equals_greedy_logdet(seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 12, 16, generator=gen)
    rel = torch.randn(3, 12, generator=gen)
    got = conditional_dpp_select(x, normalize_relevance(rel), 5)
    for f in range(3):
        expected, gaps = _greedy_logdet(_kernel(x[f], rel[f]), 5)
        assert min(gaps) > 1e-4  # no near-tie, so fp32 vs fp64 cannot flip a pick
        assert got[f].tolist() == expected
    mask = get_pruner("cdpruner").keep_mask(x, PruneParams(ratio=5 / 12), relevance=rel)
    assert [torch.nonzero(m).squeeze(1).tolist() for m in mask] == got.tolist()


@pytest.mark.parametrize("seed", range(3))
def test_cdpruner_k1_is_the_exhaustive_best_singleton(seed):
    gen = torch.Generator().manual_seed(seed)
    x, rel = torch.randn(2, 12, 16, generator=gen), torch.randn(2, 12, generator=gen)
    got = conditional_dpp_select(x, normalize_relevance(rel), 1)
    for f in range(2):
        kernel = _kernel(x[f], rel[f])
        best = max(itertools.combinations(range(12), 1), key=lambda s: float(torch.det(kernel[list(s)][:, list(s)])))
        assert got[f].tolist() == list(best)


def test_cdpruner_frames_are_independent():
    gen = torch.Generator().manual_seed(7)
    x, rel = torch.randn(4, 30, 8, generator=gen), torch.randn(4, 30, generator=gen)
    batched = get_pruner("cdpruner").keep_mask(x, PruneParams(ratio=0.2), relevance=rel)
    for f in range(4):
        alone = get_pruner("cdpruner").keep_mask(x[f : f + 1], PruneParams(ratio=0.2), relevance=rel[f : f + 1])
        assert torch.equal(batched[f : f + 1], alone)


def test_cdpruner_relevance_is_min_max_normalised_per_frame():
    # a different positive affine map per frame leaves every frame's choice unchanged
    gen = torch.Generator().manual_seed(8)
    x, rel = torch.randn(3, 24, 8, generator=gen), torch.randn(3, 24, generator=gen)
    scaled = rel * torch.tensor([[1.0], [10.0], [0.1]]) + torch.tensor([[0.0], [5.0], [-3.0]])
    pruner, params = get_pruner("cdpruner"), PruneParams(ratio=0.25)
    assert torch.equal(pruner.keep_mask(x, params, relevance=rel), pruner.keep_mask(x, params, relevance=scaled))
    norm = normalize_relevance(scaled)
    assert torch.allclose(norm.amin(dim=1), torch.zeros(3)) and torch.allclose(norm.amax(dim=1), torch.ones(3))


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
        expected, _ = _greedy_logdet(_kernel(x[f], rel[f]), 2)
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
