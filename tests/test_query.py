"""Prompt query weighting (SPEC §3): batched strategies against the literal per-prompt loop."""
from __future__ import annotations

import pytest
import torch

from rediprune.pruning import QUERY_STRATEGIES, build_queries, rediprune_select
from slow_reference import query_loop

IMAGE, VIDEO = 1, 2


def _batch():
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(60, 12, generator=gen)
    ids = torch.randint(3, 60, (5, 24), generator=gen)
    mask = torch.ones(5, 24, dtype=torch.long)
    mask[1, :7] = 0  # left padding
    mask[2, :3] = 0
    ids[0, 5] = IMAGE
    ids[1, 10], ids[1, 12] = VIDEO, IMAGE  # two placeholders: the tail starts after the last
    ids[3, 23] = IMAGE  # placeholder at the very end: empty tail → zero query
    ids[2, 1] = IMAGE  # a placeholder id under padding is ignored (row 2 has none elsewhere)
    return ids, mask, weight


@pytest.mark.parametrize("strategy", QUERY_STRATEGIES)
@pytest.mark.parametrize("max_tokens", [128, 4, 1])
def test_batched_strategies_match_the_literal_loop(strategy, max_tokens):
    ids, mask, weight = _batch()
    got = build_queries(ids, mask, weight, [IMAGE, VIDEO], strategy, max_tokens)
    want = torch.stack([query_loop(ids[b], mask[b], weight, {IMAGE, VIDEO}, strategy, max_tokens) for b in range(5)])
    assert got.shape == (5, 12) and got.dtype == torch.float32
    assert torch.allclose(got, want, atol=1e-6)


def test_strategies_differ_and_empty_tail_is_zero():
    ids, mask, weight = _batch()
    out = {s: build_queries(ids, mask, weight, [IMAGE, VIDEO], s) for s in QUERY_STRATEGIES}
    assert torch.count_nonzero(out["none"]) == 0
    for s in QUERY_STRATEGIES:
        assert torch.count_nonzero(out[s][3]) == 0  # empty tail
    others = [s for s in QUERY_STRATEGIES if s != "none"]
    for i, a in enumerate(others):
        for b in others[i + 1 :]:
            assert not torch.allclose(out[a][0], out[b][0]), (a, b)


def test_questions_give_different_queries_and_padding_is_removed():
    """The reference's integer-mask bug made every question's query equal; ours must differ per question."""
    ids, mask, weight = _batch()
    q = build_queries(ids, mask, weight, [IMAGE], "exponential")
    assert not torch.allclose(q[0], q[4])
    # the same prompt with extra left padding gives the same query
    padded_ids = torch.cat([torch.zeros(1, 5, dtype=torch.long), ids[4:5]], dim=1)
    padded_mask = torch.cat([torch.zeros(1, 5, dtype=torch.long), mask[4:5]], dim=1)
    assert torch.allclose(build_queries(padded_ids, padded_mask, weight, [IMAGE])[0], q[4], atol=1e-6)


def test_exponential_weights_favour_late_tokens():
    weight = torch.eye(8)
    ids = torch.tensor([[IMAGE, 3, 4, 5, 6, 7]])
    q = build_queries(ids, torch.ones_like(ids), weight, [IMAGE], "middle_peak")
    assert q[0, 5] > q[0, 3] and q[0, 5] > q[0, 7]  # middle token weighs most
    q = build_queries(ids, torch.ones_like(ids), weight, [IMAGE], "exponential")
    assert q[0, 7] > q[0, 5] > q[0, 3]


def test_query_drives_selection():
    ids, mask, weight = _batch()
    q = build_queries(ids, mask, weight, [IMAGE, VIDEO], "average")
    feats = torch.randn(2, 30, 12, generator=torch.Generator().manual_seed(5))
    a = rediprune_select(feats, q[0], 0.2, alpha=1.0)
    b = rediprune_select(feats, q[4], 0.2, alpha=1.0)
    assert not torch.equal(a, b)


def test_bad_input():
    ids, mask, weight = _batch()
    with pytest.raises(ValueError, match=r"query strategy='uniform'.*allowed: none, average"):
        build_queries(ids, mask, weight, [IMAGE], "uniform")
    with pytest.raises(ValueError, match=r"attention_mask\.shape"):
        build_queries(ids, mask[:, 1:], weight, [IMAGE])
    with pytest.raises(ValueError, match=r"max_tokens=0"):
        build_queries(ids, mask, weight, [IMAGE], "average", 0)
