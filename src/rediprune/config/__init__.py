"""The config of one evaluation (``conf/config.yaml``, ``src/evaluate.py``) and its Hydra registration.

Usage::

    from rediprune.config import RunConfig, register_configs, load
    register_configs()                       # before @hydra.main
    run = load(cfg)                           # DictConfig -> RunConfig, range checks, clear errors

``RunConfig`` is everything one evaluation depends on (backbone, dataset, pruner, query, the
hyperparameters, measurement) and nothing about how many are run: a sweep's search, launch and W&B
settings belong to the sweep's config (``conf/sweep.yaml``, ``rediprune.sweep.config``), which extends
this one. ``run_evaluation`` and each trial's saved ``config.yaml`` hold a RunConfig only.

The YAML files in ``conf/`` fill these schemas; the schema for each group is registered in Hydra's
ConfigStore as ``<group>/schema`` and named first in each YAML's defaults list, so a typo in a key or
a value outside an enum fails when the config is composed. The root schema is registered as ``schema``
by the entry point (``src/sweep.py`` registers the sweep's extension of it under that name).

Importing this module registers the ``rediprune_demo`` resolver: ``${rediprune_demo:image/llava}`` is the
absolute path of a shipped demo model folder (``rediprune.demo.demo_path``), so configs name package data
without depending on the working directory.
"""
from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from rediprune.config.evaluation import (
    BackboneConfig,
    DatasetConfig,
    MeasureConfig,
    PrunerConfig,
    QueryConfig,
)
from rediprune.demo import demo_path
from rediprune.pruning.hyperparameters import hyperparameter_fields, values_of

OmegaConf.register_new_resolver("rediprune_demo", demo_path, replace=True)


# The hyperparameters as top-level fields, from their table in
# rediprune.pruning.hyperparameters (name, type, default; range and meaning for checks and --help).
Hyperparameters = make_dataclass("Hyperparameters", hyperparameter_fields(), namespace={"__module__": __name__})


@dataclass
class RunConfig(Hyperparameters):
    """Everything one evaluation depends on; saved with its results."""

    backbone: BackboneConfig = MISSING
    dataset: DatasetConfig = MISSING
    pruner: PrunerConfig = MISSING
    query: QueryConfig = MISSING
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    seed: int = 0  # seed of lmms-eval's sampling and of random pruning
    cache_dir: str = "outputs/cache"  # hyperparameter-independent features and queries
    hf_home: str = "outputs/hf_home"  # HF datasets cache lmms-eval writes even for local data

    def __post_init__(self) -> None:
        from rediprune.pruning.validation import check_params

        check_params(values_of(self), self.pruner.prefilter.value)
        for key, seed in (("seed", self.seed), ("pruner.seed", self.pruner.seed)):
            if not 0 <= seed < 2**32:  # numpy's and torch's seed range
                raise ValueError(f"{key}={seed!r} is not allowed; expected an integer in [0, 2**32 - 1]")


def register_configs() -> None:
    """Register the schemas in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    from rediprune.config.help import help_text

    OmegaConf.register_new_resolver("rediprune_help", help_text, replace=True)  # hydra.help.template
    cs = ConfigStore.instance()
    cs.store(name="schema", node=RunConfig)
    for group, node in (
        ("backbone", BackboneConfig),
        ("dataset", DatasetConfig),
        ("pruner", PrunerConfig),
        ("query", QueryConfig),
    ):
        cs.store(group=group, name="schema", node=node)


def load(cfg: DictConfig | dict[str, Any]) -> RunConfig:
    """Turn a composed config into a checked RunConfig; bad values raise ValueError naming the key."""
    if isinstance(cfg, DictConfig):  # as plain values: a node typed by an extension (SweepConfig) stays a RunConfig
        cfg = OmegaConf.to_container(cfg, resolve=False)
    merged = OmegaConf.merge(OmegaConf.structured(RunConfig), OmegaConf.create(cfg))
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


__all__ = ["RunConfig", "load", "register_configs"]
