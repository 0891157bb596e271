"""The pruners' hyperparameters and allowed values, each declared once (no torch: cheap to import).

Usage::

    from rediprune.pruning.hyperparameters import HYPERPARAMETERS, hyperparameter, hyperparameter_fields

    hyperparameter("beta").check(0.5)      # ValueError: beta=0.5 is not allowed; expected a finite number ≥ 1
    [h.name for h in HYPERPARAMETERS]      # ['ratio', 'alpha', 'tau', 'M', 'beta']

Each row is a hyperparameter's name (as on the command line, in results and in W&B), type, allowed range,
default and one-line meaning. Everything else reads the table rather than restating it: validation
(``check_params``), the fields of ``PruneParams`` and of the evaluation config (``rediprune.config``), the
search-space domains (``rediprune.sweep.config``), result columns and W&B config keys (the evaluation's
metrics row), ``--help``, plot labels and reports. Adding a hyperparameter is a row here and the code of
the pruner that reads it (its ``hyperparameters`` set); a search range in ``conf/search/pareto.yaml`` if
Optuna should search it.

The sets of allowed values the pruning layer owns live here too: pruner names, query strategies and
sources, pre-filters, placements. The config's enums are built from them.
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, NoReturn, Optional

PRUNERS = ("rediprune", "divprune", "cdpruner", "random", "none")  # each registered under this name
QUERY_STRATEGIES = ("none", "average", "middle_peak", "self_attention", "exponential")  # SPEC §3, Table 4
QUERY_SOURCES = ("llm", "clip_text")  # the LLM's prompt embeddings (paper) / the CLIP text tower (SPEC §3)
PREFILTERS = ("reference", "paper")  # SPEC §2.1 (the authors' released behaviour, default) / §2.2 (Algorithm 1)


class Placement(str, enum.Enum):
    """Where in the model a pruner acts."""

    PRE_PROJECTION = "pre_projection"  # encoder patch features, before the vision-language projector
    POST_PROJECTION = "post_projection"  # projected features in the LLM's embedding space


# "default": the pruner's own placement (ReDiPrune before, DivPrune/CDPruner after the projector)
PLACEMENT_CHOICES = ("default", *(p.value for p in Placement))


def fail(name: str, value: object, allowed: str) -> NoReturn:
    """Raise the project's one error format: ``name=value is not allowed; expected allowed``."""
    raise ValueError(f"{name}={value!r} is not allowed; expected {allowed}")


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter: ``low``..``high`` (ends open or closed), optionally null (no value)."""

    name: str
    kind: type  # float or int
    default: Any
    help: str  # one line: what it does
    symbol: str  # short label on plots
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    nullable: bool = False

    @property
    def annotation(self) -> Any:
        """The field type of a structured config holding it."""
        return Optional[self.kind] if self.nullable else self.kind

    def allowed(self) -> str:
        """What is allowed, in the words of every error message: ``a number in (0, 1]``."""
        null = "null or " if self.nullable else ""
        noun = "an integer" if self.kind is int else "a number"
        if math.isinf(self.high):
            noun = noun if self.kind is int else "a finite number"
            return f"{null}{noun} {'>' if self.low_open else '≥'} {self.low:g}"
        left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
        return f"{null}{noun} in {left}{self.low:g}, {self.high:g}{right}"

    def contains(self, value: Any, *, integral_floats: bool = False) -> bool:
        """Whether ``value`` is allowed (``integral_floats``: 16.0 counts as an integer, as a search range's ends)."""
        if value is None:
            return self.nullable
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.kind is int and not (isinstance(value, int) or (integral_floats and float(value).is_integer())):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def check(self, value: Any, key: str | None = None) -> None:
        """Raise ValueError naming ``key`` (default: the name), the value and what is allowed."""
        if not self.contains(value):
            fail(key or self.name, value, self.allowed())


HYPERPARAMETERS = (
    Hyperparameter("ratio", float, 0.15, "fraction of visual tokens kept (per frame)", "r",
                   low=0.0, high=1.0, low_open=True),
    Hyperparameter("alpha", float, 0.5, "weight of query relevance against diversity in each pick (0: diversity only)",
                   "α", low=0.0),
    Hyperparameter("tau", float, 0.0, "relevance threshold of the candidate pre-filter (≤ 0: every token is a candidate)",
                   "τ", low=-1.0, high=1.0),
    Hyperparameter("M", int, None, "cap on candidate tokens (prefilter=paper); null: no cap", "M",
                   low=1, nullable=True),
    Hyperparameter("beta", float, 3.0, "candidates capped at beta × kept tokens (prefilter=paper)", "β", low=1.0),
)
NAMES = tuple(h.name for h in HYPERPARAMETERS)
# What a sweep may vary per trial besides them: the query strategy (a config group over QUERY_STRATEGIES).
SWEPT = (*NAMES, "query")


def hyperparameter(name: str) -> Hyperparameter:
    """The row of ``name``; KeyError for a name not in the table."""
    for h in HYPERPARAMETERS:
        if h.name == name:
            return h
    raise KeyError(name)


def hyperparameter_fields() -> list[tuple[str, Any, Any]]:
    """``dataclasses.make_dataclass`` fields, one per hyperparameter, with its default."""
    return [(h.name, h.annotation, field(default=h.default)) for h in HYPERPARAMETERS]


def values_of(obj: Any) -> dict[str, Any]:
    """``{name: obj.name}`` for every hyperparameter (a RunConfig, PruneParams or result row object)."""
    return {name: getattr(obj, name) for name in NAMES}


def str_enum(name: str, values: tuple[str, ...], doc: str) -> type[enum.Enum]:
    """A ``str`` Enum over ``values`` (members named as their values), for structured configs."""
    made = enum.Enum(name, {v: v for v in values}, type=str)  # type: ignore[misc]
    made.__doc__ = doc
    return made


__all__ = ["HYPERPARAMETERS", "NAMES", "PLACEMENT_CHOICES", "PREFILTERS", "PRUNERS", "Placement", "QUERY_SOURCES",
           "QUERY_STRATEGIES", "SWEPT", "Hyperparameter", "fail", "hyperparameter", "hyperparameter_fields", "str_enum",
           "values_of"]
