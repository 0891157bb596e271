"""The sweep's config: the evaluation's config plus how trials are searched, launched and tracked.

Usage (``src/sweep.py``, with ``conf/sweep.yaml``)::

    register_sweep_configs()                   # before @hydra.main: root schema SweepConfig, sweep groups
    sweep = load_sweep(cfg)                    # the master config -> SweepConfig (ranges, space checked)
    trial_cfg = evaluation_part(job_cfg)       # what a trial runs and saves: a RunConfig's keys only

``conf/sweep.yaml`` builds on ``conf/config.yaml`` (one evaluation) with three groups: ``search`` (grid or
Optuna; it also picks the Hydra sweeper), ``launch`` (the resident Ray pool) and ``wandb``. They are the
sweep's alone: a trial's config, its saved ``config.yaml``, its hash and its W&B config hold only the
evaluation (``evaluation_part``), so ``src/evaluate.py`` composes none of this and no storage URL or W&B
setting reaches a trial's folder. They stay top-level groups, not ``hydra.sweeper`` parameters, so the
command line reads as it did (``search=pareto search.n_trials=24 launch.num_workers=4 wandb=offline``).

OmegaConf checks types and enum values when the config is composed; ``__post_init__`` checks ranges and
the search space when ``load_sweep`` turns the composed config into objects — before Ray starts or a
model loads. Every error names the key, the value and what is allowed.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from rediprune.config import RunConfig, register_configs
from rediprune.pruning.hyperparameters import QUERY_STRATEGIES, SWEPT, hyperparameter
from rediprune.pruning.hyperparameters import fail as _fail


def require(group: str, settings: Any, rules: Dict[str, Tuple[Callable[[Any], bool], str]]) -> None:
    """Check ``settings`` field by field: ``{key: (is_allowed, what is allowed)}``; the first value that is
    not allowed raises the project's one-line error naming ``group.key``, the value and what is allowed."""
    for key, (allowed, expected) in rules.items():
        if not allowed(getattr(settings, key)):
            _fail(f"{group}.{key}", getattr(settings, key), expected)


class SearchKind(str, enum.Enum):
    grid = "grid"  # every combination of the command line's value lists (rediprune.sweep.grid)
    pareto = "pareto"  # Optuna multi-objective search (rediprune.sweep.search)


class Sampler(str, enum.Enum):
    nsga2 = "nsga2"  # optuna.samplers.NSGAIISampler
    tpe = "tpe"  # optuna.samplers.TPESampler(multivariate, constant_liar) for concurrent trials


class WandbMode(str, enum.Enum):
    auto = "auto"  # online when an API key is configured (env, netrc, settings), offline otherwise
    online = "online"
    offline = "offline"
    disabled = "disabled"


@dataclass
class ParamSpace:
    """One dimension of the Optuna search space: either ``choices`` or a ``low``..``high`` range."""

    low: Optional[float] = None  # range start (inclusive)
    high: Optional[float] = None  # range end (inclusive)
    step: Optional[float] = None  # discretisation step (optional); M always steps by integers
    log: bool = False  # sample on a log scale (not with step)
    choices: Optional[List[Any]] = None  # categorical values (may include null for M)


@dataclass
class SearchConfig:
    """What a sweep explores and how it is named and resumed."""

    kind: SearchKind = SearchKind.grid
    # Sweep name: folder outputs/sweeps/<name>, W&B group, default Optuna study name. null: derived
    # from the search kind and the command's overrides, so rerunning the same command resumes it.
    name: Optional[str] = None
    skip_finished: bool = True  # rerun: skip trials whose config hash already finished in this sweep
    # paper-table layouts (conf/report/layout/<name>.yaml) written to <sweep folder>/reports at the end
    report: List[str] = field(default_factory=list)
    objective: str = "primary_metric"  # result key to maximise (higher is better)
    cost: str = "tflops"  # result key to minimise
    # Optuna (kind=pareto)
    sampler: Sampler = Sampler.nsga2
    n_trials: int = 12  # finished trials the study should hold; a rerun tops it up
    study_name: Optional[str] = None  # null: the sweep name
    storage: Optional[str] = None  # SQLAlchemy URL; null: sqlite:///<sweep folder>/optuna.db
    seed: int = 0  # sampler seed
    population_size: int = 6  # NSGA-II generation size
    n_startup_trials: int = 6  # TPE random trials before modelling
    space: Dict[str, ParamSpace] = field(default_factory=dict)
    # Shared studies (several drivers on one storage): Optuna's heartbeat marks a trial whose driver
    # stopped beating for grace_period seconds FAIL, and its parameters are asked again up to max_retry times.
    heartbeat_interval: int = 10
    grace_period: int = 30
    max_retry: int = 3
    # A trial whose pruned LLM input for a sample equals one a worker already generated for (same
    # model, prompt, pixels, kept tokens per frame, generation settings) reuses that answer instead
    # of generating; selection, token counts, TFLOPs and timing still run per trial. false: always generate.
    reuse_answers: bool = True

    def __post_init__(self) -> None:
        beat = self.heartbeat_interval
        require("search", self, {
            "heartbeat_interval": (lambda v: v >= 1, "an integer ≥ 1 (seconds)"),
            "grace_period": (lambda v: v > beat, f"an integer > search.heartbeat_interval={beat} (seconds)"),
            "max_retry": (lambda v: v >= 0, "an integer ≥ 0"),
            "name": (lambda v: v is None or _is_slug(v), "null or 1-48 characters of [A-Za-z0-9._-]"),
            "study_name": (lambda v: v is None or bool(v.strip()), "null or a non-empty string"),
            "storage": (lambda v: v is None or "://" in v, "null or an SQLAlchemy URL such as sqlite:///path.db"),
            "n_trials": (lambda v: v >= 1, "an integer ≥ 1"),
            "population_size": (lambda v: v >= 2, "an integer ≥ 2"),
            "n_startup_trials": (lambda v: v >= 0, "an integer ≥ 0"),
            "objective": (bool, "a result key such as primary_metric / tflops"),
            "cost": (bool, "a result key such as primary_metric / tflops"),
        })
        if self.kind == SearchKind.pareto and not self.space:
            _fail("search.space", {}, f"at least one of {', '.join(SWEPT)} for search=pareto")
        for name, spec in self.space.items():
            check_space(name, spec)


def _is_slug(text: str) -> bool:
    import re

    return re.fullmatch(r"[A-Za-z0-9._-]{1,48}", text) is not None


def check_space(name: str, spec: Any) -> None:
    key = f"search.space.{name}"
    if name not in SWEPT:
        _fail("search.space", name, f"one of {', '.join(SWEPT)}")
    if isinstance(spec, dict):  # plain dicts when built by hand rather than composed
        spec = ParamSpace(**spec)
    has_range = spec.low is not None or spec.high is not None
    if spec.choices is not None:
        if has_range:
            _fail(key, "choices and low/high", "either choices or a low..high range")
        if len(spec.choices) == 0:
            _fail(f"{key}.choices", [], "a non-empty list")
        for value in spec.choices:
            if name == "query":
                if value not in QUERY_STRATEGIES:
                    _fail(f"{key}.choices", value, f"query strategies from {', '.join(QUERY_STRATEGIES)}")
            elif not hyperparameter(name).contains(value, integral_floats=True):
                _fail(f"{key}.choices", value, hyperparameter(name).allowed())
        return
    if name == "query":
        _fail(key, "a range", f"choices from {', '.join(QUERY_STRATEGIES)}")
    if spec.low is None or spec.high is None:
        _fail(key, f"low={spec.low}, high={spec.high}", "both low and high, or choices")
    for end in ("low", "high"):
        if getattr(spec, end) is None or not hyperparameter(name).contains(getattr(spec, end), integral_floats=True):
            _fail(f"{key}.{end}", getattr(spec, end), hyperparameter(name).allowed())
    if spec.low > spec.high:
        _fail(key, f"low={spec.low} > high={spec.high}", "low ≤ high")
    if spec.step is not None and not (spec.step > 0):
        _fail(f"{key}.step", spec.step, "null or a number > 0")
    if spec.log and (spec.step is not None or spec.low <= 0):
        _fail(f"{key}.log", True, "log only with low > 0 and no step")


@dataclass
class LaunchConfig:
    """Where trials run: a Ray actor pool of resident workers."""

    # null: start a local Ray for the run (dashboard off), or, under `ray job submit`, join the job's
    # cluster (Ray's RAY_ADDRESS); "auto", "127.0.0.1:6379" or "ray://host:10001": join that cluster
    address: Optional[str] = None
    num_workers: int = 2  # resident workers (each loads the model once)
    num_cpus: Optional[int] = None  # CPUs of the local Ray; null: num_workers × cpus_per_worker
    cpus_per_worker: float = 1.0
    gpus_per_worker: Optional[float] = None  # null: 1 when backbone.device is cuda, else 0
    max_retries: int = 1  # times a trial whose worker process died is retried (actor restarts)
    start_timeout: float = 600.0  # seconds to wait for the first worker (an autoscaler adding a GPU node)
    log_to_driver: bool = False  # stream worker stdout to the console (each trial has its own log)
    progress: bool = True  # tqdm bar over trials
    cache_max_gb: float = 20.0  # bound of the on-disk feature cache; least recently used entries go first

    def __post_init__(self) -> None:
        require("launch", self, {
            "cache_max_gb": (lambda v: v > 0, "a number of GiB > 0"),
            "address": (lambda v: v is None or bool(v.strip()), "null (local Ray), 'auto', 'host:port' or 'ray://host:port'"),
            "num_workers": (lambda v: v >= 1, "an integer ≥ 1"),
            "num_cpus": (lambda v: v is None or v >= 1, "null or an integer ≥ 1"),
            "cpus_per_worker": (lambda v: v > 0, "a number > 0"),
            "gpus_per_worker": (lambda v: v is None or v >= 0, "null (auto) or a number ≥ 0"),
            "start_timeout": (lambda v: v > 0, "a number of seconds > 0"),
            "max_retries": (lambda v: v >= 0, "an integer ≥ 0"),
        })


@dataclass
class WandbConfig:
    """Weights & Biases tracking: one run per trial plus a sweep-level Pareto dashboard run."""

    mode: WandbMode = WandbMode.auto
    project: str = "rediprune-sweep"
    entity: Optional[str] = None  # null: the logged-in user's default entity
    tags: List[str] = field(default_factory=list)
    init_timeout: float = 60.0  # seconds wandb.init may take online before the sweep goes offline

    def __post_init__(self) -> None:
        require("wandb", self, {"project": (lambda v: bool(v.strip()), "a non-empty project name"),
                                "init_timeout": (lambda v: v > 0, "a number of seconds > 0")})


# Top-level keys (and groups) of the sweep's config that are not the evaluation's.
SWEEP_KEYS = ("search", "launch", "wandb")


@dataclass
class SweepConfig(RunConfig):
    """The root of ``conf/sweep.yaml``: one evaluation's config plus the sweep's settings."""

    search: SearchConfig = field(default_factory=SearchConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)


def register_sweep_configs() -> None:
    """Register the evaluation's schemas, then SweepConfig as the root ``schema`` and the sweep groups."""
    from hydra.core.config_store import ConfigStore

    register_configs()
    cs = ConfigStore.instance()
    cs.store(name="schema", node=SweepConfig)
    for group, node in (("search", SearchConfig), ("launch", LaunchConfig), ("wandb", WandbConfig)):
        cs.store(group=group, name="schema", node=node)


def load_sweep(cfg: DictConfig) -> SweepConfig:
    """The master config (without ``hydra``) as a checked SweepConfig; bad values raise ValueError."""
    merged = OmegaConf.merge(OmegaConf.structured(SweepConfig), cfg)
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def evaluation_part(cfg: DictConfig) -> DictConfig:
    """``cfg`` without the sweep's keys (in place, returned): what a trial runs, saves and is hashed by."""
    with read_write(cfg), open_dict(cfg):
        for key in SWEEP_KEYS:
            cfg.pop(key, None)
    return cfg


def is_sweep_override(override: str) -> bool:
    """Whether a command-line override sets one of the sweep's keys (``search=pareto``, ``launch.x=…``)."""
    key = override.split("=", 1)[0].lstrip("+~").split("@", 1)[0]
    return any(key == k or key.startswith(k + ".") for k in SWEEP_KEYS)


__all__ = [
    "SWEEP_KEYS",
    "SweepConfig",
    "evaluation_part",
    "is_sweep_override",
    "load_sweep",
    "register_sweep_configs",
    "check_space",
    "LaunchConfig",
    "ParamSpace",
    "Sampler",
    "SearchConfig",
    "SearchKind",
    "WandbConfig",
    "WandbMode",
]
