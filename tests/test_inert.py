"""Swept hyperparameters with no effect (issue 11): the pruners' rules and the sweep's one-line notes."""
from __future__ import annotations

import torch

from rediprune.pruning import PruneParams, get_pruner
from rediprune.sweep.inert import inert_notes, inert_space_notes

BASE = dict(ratio=0.1, alpha=0.5, tau=0.0, M=None, beta=3.0, query="exponential", pruner="rediprune",
            prefilter="reference")


def _trials(**values):
    (name, options), = values.items()
    return [{**BASE, name: v} for v in options]


def test_reference_prefilter_ignores_M_and_beta_and_the_note_says_so():
    notes = inert_notes([{**BASE, "M": m, "beta": b} for m in (8, 16) for b in (2.0, 3.0)])
    assert [n.split(" is swept")[0] for n in notes] == ["note: M", "note: beta"]
    assert "pruner.prefilter=reference" in notes[0] and "(8, 16)" in notes[0]
    # and it is true: the selections are identical
    gen = torch.Generator().manual_seed(0)
    x, q = torch.randn(3, 40, 16, generator=gen), torch.randn(16, generator=gen)
    pruner = get_pruner("rediprune")
    masks = [pruner.keep_mask(x, PruneParams(ratio=0.2, tau=tau, M=m, beta=b), query=q)
             for tau in (0.0, 0.2) for m in (8, None) for b in (2.0, 3.0)]
    assert all(torch.equal(masks[0], m) for m in masks[:4]) and all(torch.equal(masks[4], m) for m in masks[4:])


def test_paper_prefilter_uses_M():
    assert inert_notes([{**BASE, "M": m, "prefilter": "paper"} for m in (8, 16)]) == []


def test_query_none_makes_alpha_and_tau_idle():
    notes = inert_notes([{**BASE, "query": "none", "alpha": a, "tau": t} for a in (0.0, 1.0) for t in (0.0, 0.2)])
    assert [n.split(" is swept")[0] for n in notes] == ["note: alpha", "note: tau"]
    assert "query=none" in notes[0]


def test_baselines_read_only_ratio():
    for pruner in ("divprune", "cdpruner", "random"):
        notes = inert_notes([{**BASE, "pruner": pruner, "alpha": a, "query": q}
                             for a in (0.0, 1.0) for q in ("none", "average")])
        assert [n.split(" is swept")[0] for n in notes] == ["note: alpha", "note: query"]
        assert f"pruner={pruner} does not use alpha" in notes[0]
    assert inert_notes(_trials(ratio=(0.1, 0.2))) == []
    assert "pruner=none does not use ratio" in inert_notes([{**BASE, "pruner": "none", "ratio": r} for r in (0.1, 0.2)])[0]


def test_a_parameter_live_in_some_trials_gets_no_note():
    trials = [{**BASE, "pruner": p, "alpha": a} for p in ("divprune", "rediprune") for a in (0.0, 1.0)]
    assert inert_notes(trials) == []
    assert inert_notes(_trials(alpha=(0.5,))) == []  # not swept


def test_search_space_notes():
    notes = inert_space_notes(["ratio", "M", "beta"], "rediprune", "reference", "exponential")
    assert [n.split(" is searched")[0] for n in notes] == ["note: M", "note: beta"]
    assert inert_space_notes(["alpha", "tau"], "rediprune", "reference", "none")[0].startswith("note: alpha")
    assert inert_space_notes(["alpha", "query"], "rediprune", "reference", "none") == []  # query searched
    assert len(inert_space_notes(["alpha", "query"], "divprune", "reference", "none")) == 2
