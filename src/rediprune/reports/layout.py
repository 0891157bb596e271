"""Structured configs of the report step: a table layout (``conf/report/layout/*.yaml``) and its statistics.

Usage::

    layout = load_layout("table1", [Path("conf")])      # conf/report/layout/table1.yaml, checked
    layout = load_layout(Path("my_table.yaml"), [])     # or any layout file
    stats = StatsConfig(resamples=2000)

A layout is data: which result field makes the rows (``row``), the row blocks (``block``) and the column
groups (``group``), which columns each group has (``columns``: a result key or a glob such as
``metric/acc_*``, optionally one column per value of ``per``), how each is shown (scale, format,
direction) and whether it carries a bootstrap interval and paired tests (``ci``). A new table is a new
YAML file; nothing in the code names a paper table. OmegaConf checks keys and types on load; ``check``
checks the values, each error naming the key, the value and what is allowed.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from omegaconf import OmegaConf


class ReportError(ValueError):
    """A bad report input (layout, sweep folder, statistics setting): one line naming what and why."""


class Direction(str, enum.Enum):
    max = "max"  # higher is better: ↑, best value bold
    min = "min"  # lower is better: ↓, best value bold
    none = "none"  # no arrow, nothing bold


class Aggregate(str, enum.Enum):
    single = "single"  # exactly one trial per cell (two different trials there is an error)
    mean = "mean"  # the mean over the cell's trials (e.g. efficiency averaged over datasets)


class Test(str, enum.Enum):
    permutation = "permutation"  # scipy.stats.permutation_test, paired (permutation_type="samples")
    wilcoxon = "wilcoxon"  # scipy.stats.wilcoxon signed-rank on the paired differences


class Method(str, enum.Enum):
    percentile = "percentile"
    basic = "basic"
    BCa = "BCa"


@dataclass
class ColumnSpec:
    """One column (or one per value of ``per`` and per key matching ``metric``) of a column group."""

    metric: str = "primary_metric"  # result-row key, or a glob (metric/acc_*): one column per matching key
    label: str = "{dataset} {metric}"  # header; fields {dataset}, {metric}, {star} (the glob's * part)
    per: Optional[str] = None  # result field: one column per value present (e.g. dataset)
    only: List[Any] = field(default_factory=list)  # values of ``per`` this column is for (empty: every one)
    direction: Direction = Direction.max
    scale: float = 1.0  # value shown = value × scale (100: fractions as the paper's percentages)
    format: str = ".2f"  # Python format spec of the shown value
    ci: bool = False  # bootstrap interval and paired tests from the trials' per-sample scores
    aggregate: Aggregate = Aggregate.single
    paren: Optional[str] = None  # second result key shown in parentheses, e.g. tflops_ratio
    paren_scale: float = 1.0
    paren_format: str = ".2f"


@dataclass
class DatasetInfo:
    """How a dataset is named in headers, and its metric's name and scale there."""

    label: Optional[str] = None  # null: the dataset's name
    metric: Optional[str] = None  # name of its primary metric in headers (WUPS, Acc); null: the key
    scale: Optional[float] = None  # overrides the column's scale for this dataset


@dataclass
class LayoutConfig:
    """A table: rows × (groups of) columns, in row blocks; see the module docstring."""

    name: str = "table"  # file stem of the written table (<name>.md, .tex, .csv)
    title: str = ""
    row: str = "pruner"  # result field whose values are the rows
    order: List[str] = field(default_factory=list)  # row values first in this order; others after, sorted
    labels: Dict[str, str] = field(default_factory=dict)  # row value -> shown name
    block: Optional[str] = None  # result field: one block of rows per value (e.g. backbone)
    block_label: str = "{value}"
    group: Optional[str] = None  # result field: one group of columns per value (e.g. ratio)
    group_order: List[Any] = field(default_factory=list)  # group values first in this order
    group_label: str = "{field} = {value}"
    where: Dict[str, Optional[List[Any]]] = field(default_factory=dict)  # keep trials whose field is in the list (null: any)
    reference: Optional[str] = "none"  # row value every other row is tested against (Original)
    reference_label: str = "Original"  # how the footnote names it
    baselines: List[str] = field(default_factory=list)  # rows the "best baseline" is chosen from
    datasets: Dict[str, DatasetInfo] = field(default_factory=dict)  # header names; also the column order
    columns: List[ColumnSpec] = field(default_factory=list)
    note: str = ""  # extra footnote line


@dataclass
class StatsConfig:
    """Uncertainty settings: bootstrap intervals and paired tests (seeded, so reruns give equal files)."""

    confidence: float = 0.95
    resamples: int = 9999  # bootstrap resamples per cell
    method: Method = Method.percentile  # scipy.stats.bootstrap method
    test: Test = Test.permutation
    test_resamples: int = 9999  # permutation resamples (scipy enumerates exactly when 2^n is smaller)
    alpha: float = 0.05  # marks: p < alpha
    seed: int = 0


@dataclass
class ReportConfig:
    """Root config of ``src/report.py`` (``conf/report/report.yaml``)."""

    dirs: List[str] = field(default_factory=list)  # sweep folders, merged (later folders win per trial)
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    out: Optional[str] = None  # output folder; None: <first sweep folder>/reports
    formats: List[str] = field(default_factory=lambda: ["md", "tex", "csv"])


FORMATS = ("md", "tex", "csv")


def register_configs() -> None:
    """Register the report schemas in Hydra's ConfigStore (``report_schema``, ``layout/schema``)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="report_schema", node=ReportConfig)
    cs.store(group="layout", name="schema", node=LayoutConfig)


def _fail(key: str, value: object, allowed: str) -> None:
    raise ReportError(f"{key}={value!r} is not allowed; expected {allowed}")


def check_layout(layout: LayoutConfig) -> LayoutConfig:
    """Value checks OmegaConf's types cannot do; returns ``layout``."""
    if not layout.name.strip() or "/" in layout.name:
        _fail("layout.name", layout.name, "a file stem without '/'")
    if not layout.columns:
        _fail("layout.columns", [], "at least one column")
    if layout.block is not None and layout.block in (layout.row, layout.group):
        _fail("layout.block", layout.block, "a field other than layout.row and layout.group")
    if layout.group is not None and layout.group == layout.row:
        _fail("layout.group", layout.group, "a field other than layout.row")
    for i, col in enumerate(layout.columns):
        for key in ("format", "paren_format"):
            try:
                format(1.5, getattr(col, key))
            except ValueError:
                _fail(f"layout.columns[{i}].{key}", getattr(col, key), "a Python format spec such as '.2f' or '.4g'")
        if col.per is not None and col.per in (layout.row, layout.block, layout.group):
            _fail(f"layout.columns[{i}].per", col.per, "a field other than layout.row, block and group")
    return layout


def check_stats(stats: StatsConfig) -> StatsConfig:
    if not 0 < stats.confidence < 1:
        _fail("stats.confidence", stats.confidence, "a number in (0, 1)")
    if not 0 < stats.alpha < 1:
        _fail("stats.alpha", stats.alpha, "a number in (0, 1)")
    for key in ("resamples", "test_resamples"):
        if getattr(stats, key) < 10:
            _fail(f"stats.{key}", getattr(stats, key), "an integer ≥ 10")
    return stats


def layout_from(cfg: Any) -> LayoutConfig:
    """A checked LayoutConfig from a DictConfig or dict (its Hydra ``defaults`` list dropped)."""
    data = OmegaConf.to_container(cfg) if OmegaConf.is_config(cfg) else dict(cfg)
    data.pop("defaults", None)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(LayoutConfig), data)
        layout = OmegaConf.to_object(merged)
    except Exception as exc:  # noqa: BLE001 - OmegaConf validation: unknown key, wrong type
        raise ReportError(f"layout: {str(exc).splitlines()[0]}") from exc
    return check_layout(layout)  # type: ignore[arg-type]


def layout_dirs(config_dirs: Sequence[Path]) -> list[Path]:
    """Where layouts named by a config search path live: ``<dir>/report/layout``."""
    return [Path(d) / "report" / "layout" for d in config_dirs]


def load_layout(name: str | Path, config_dirs: Sequence[Path]) -> LayoutConfig:
    """Layout ``name`` from ``<config dir>/report/layout/<name>.yaml`` (last dir first), or a YAML path."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return layout_from(OmegaConf.load(path))
    candidates = [d / f"{name}.yaml" for d in reversed(layout_dirs(config_dirs))]
    for candidate in candidates:
        if candidate.is_file():
            return layout_from(OmegaConf.load(candidate))
    known = sorted({p.stem for d in layout_dirs(config_dirs) if d.is_dir() for p in d.glob("*.yaml")} - {"schema"})
    _fail("layout", str(name), f"one of {', '.join(known) or '(no layouts found)'} or a layout .yaml file")
    raise AssertionError  # unreachable


__all__ = ["FORMATS", "ReportConfig", "register_configs", "Aggregate", "ColumnSpec", "DatasetInfo", "Direction", "LayoutConfig", "Method", "ReportError",
           "StatsConfig", "Test", "check_layout", "check_stats", "layout_dirs", "layout_from", "load_layout"]
