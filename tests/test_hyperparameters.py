"""The table of hyperparameters is the one source: config fields, PruneParams, checks, space, help, rows."""
from __future__ import annotations

import dataclasses

import pytest

from rediprune.config import RunConfig
from rediprune.pruning import PruneParams, available_pruners
from rediprune.pruning.hyperparameters import HYPERPARAMETERS, NAMES, PRUNERS, hyperparameter
from rediprune.sweep.config import check_space


def test_config_and_params_fields_come_from_the_table():
    run_fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    params = PruneParams()
    for h in HYPERPARAMETERS:
        assert run_fields[h.name].default == h.default == getattr(params, h.name)
    assert [f.name for f in dataclasses.fields(PruneParams)] == [*NAMES, "prefilter", "seed"]


def test_allowed_values_are_the_registry_and_checks_name_the_parameter():
    assert sorted(PRUNERS) == list(available_pruners())  # each pruner registered under a declared name
    with pytest.raises(ValueError, match=r"^beta=0.5 is not allowed; expected a finite number ≥ 1$"):
        PruneParams(beta=0.5)
    with pytest.raises(ValueError, match=r"^ratio=0 is not allowed; expected a number in \(0, 1\]$"):
        PruneParams(ratio=0)
    assert hyperparameter("M").contains(None) and not hyperparameter("M").contains(16.0)
    assert hyperparameter("M").contains(16.0, integral_floats=True)  # a search range's end


def test_search_space_domains_follow_the_table():
    check_space("tau", {"low": -1.0, "high": 1.0})
    with pytest.raises(ValueError, match=r"search.space.tau.high=1.5 is not allowed; expected a number in \[-1, 1\]"):
        check_space("tau", {"low": 0.0, "high": 1.5})
    with pytest.raises(ValueError, match="search.space.M.choices=0"):
        check_space("M", {"choices": [None, 0]})
