"""Build a table (values, intervals, test marks, best per column) from trials and a layout.

Usage::

    table = build_table(read_sweeps(dirs), layout, stats)
    table.columns, table.blocks[0].rows[0].cells[col.id].display

The table is format-free data; ``render`` writes it as Markdown, LaTeX, CSV and a W&B table. Rules:

- A cell holds the trials whose block, row, group and column fields match. ``aggregate: single`` needs
  at most one successful trial there (two differing trials raise ReportError naming them and the fields
  that differ: add a ``where`` filter); ``mean`` averages them. No successful trial: ``failed`` when a
  failed trial is there, else ``missing``.
- ``ci: true`` cells of one trial carry the bootstrap interval of their per-sample scores; every row but
  the reference is tested, paired on shared samples, against the reference row and — rows that are not
  baselines themselves — against the best baseline of the block in that column.
- Best per column and block: the best shown (rounded) value, so equal-looking values are all bold.
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any, Sequence

from rediprune.pruning.hyperparameters import NAMES
from rediprune.reports import stats as st
from rediprune.reports.layout import Aggregate, ColumnSpec, Direction, LayoutConfig, ReportError, StatsConfig
from rediprune.reports.results import Key, Trial, number, values

ARROW = {Direction.max: "↑", Direction.min: "↓", Direction.none: ""}


@dataclass
class Column:
    id: str  # unique within the table
    label: str  # header without arrow
    spec: ColumnSpec
    metric: str  # result key
    group: Any = None
    per: Any = None  # value of spec.per (e.g. the dataset)
    scale: float = 1.0

    @property
    def header(self) -> str:
        arrow = ARROW[self.spec.direction]
        return f"{self.label} {arrow}" if arrow else self.label


@dataclass
class Cell:
    status: str = "missing"  # ok | missing | failed
    value: float | None = None  # shown scale
    low: float | None = None
    high: float | None = None
    n: int | None = None  # per-sample scores behind the interval
    paren: float | None = None
    trials: list[str] = field(default_factory=list)  # config hashes
    p_ref: float | None = None
    p_best: float | None = None
    best_baseline: str | None = None  # row label the p_best test compared against
    mark: str = ""  # † and/or ‡
    text: str = ""  # value as shown (no marks, no interval)
    bold: bool = False
    scores: dict[Key, float] | None = field(default=None, repr=False)


@dataclass
class Row:
    value: Any
    label: str
    cells: dict[str, Cell] = field(default_factory=dict)


@dataclass
class Block:
    value: Any
    label: str
    rows: list[Row] = field(default_factory=list)


@dataclass
class Table:
    layout: LayoutConfig
    stats: StatsConfig
    columns: list[Column]
    groups: list[tuple[Any, str, int]]  # (value, label, number of columns)
    blocks: list[Block]
    footnotes: list[str]
    sweeps: list[str]


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def _ordered(found: Sequence[Any], first: Sequence[Any]) -> list[Any]:
    head = [v for v in first if v in found]
    return head + sorted((v for v in found if v not in head), key=_sort_key)


def _match(trial: Trial, key: str | None, value: Any) -> bool:
    return key is None or trial.get(key) == value


def _columns(trials: list[Trial], layout: LayoutConfig, group: Any) -> list[Column]:
    in_group = [t for t in trials if _match(t, layout.group, group)]
    out = []
    for i, spec in enumerate(layout.columns):
        per_values = _ordered(values(in_group, spec.per), list(layout.datasets)) if spec.per else [None]
        if spec.per and spec.only:
            per_values = [v for v in per_values if v in list(spec.only)]
        for per in per_values:
            subset = [t for t in in_group if _match(t, spec.per, per)]
            if any(ch in spec.metric for ch in "*?["):
                keys = sorted({k for t in subset for k in t.row if fnmatch.fnmatchcase(k, spec.metric)})
            else:
                keys = [spec.metric]
            for key in keys:
                info = layout.datasets.get(str(per)) if per is not None else None
                star = key
                if "*" in spec.metric:
                    pre, _, post = spec.metric.partition("*")
                    star = key[len(pre): len(key) - len(post) if post else None]
                metric_name = key.removeprefix("metric/")
                if key == "primary_metric":
                    names = {str(t.get("primary_metric_name")) for t in subset if t.get("primary_metric_name")}
                    metric_name = (info.metric if info and info.metric
                                   else names.pop() if len(names) == 1 else metric_name)
                label = spec.label.format(dataset=(info.label if info and info.label else per) if per is not None else "",
                                          metric=metric_name, star=star).strip()
                scale = info.scale if info and info.scale is not None else spec.scale
                cid = "|".join(str(x) for x in (group, i, per, key))
                out.append(Column(id=cid, label=label, spec=spec, metric=key, group=group, per=per, scale=scale))
    return out


def _differing(trials: Sequence[Trial]) -> str:
    keys = sorted({k for t in trials for k in t.row if k in (*NAMES, "seed", "query", "pruner", "backbone", "dataset",
                                                            "sweep", "query_source")})
    diff = [k for k in keys if len({repr(t.get(k)) for t in trials}) > 1]
    return ", ".join(diff) or "(only fields outside the usual ones)"


def _cell(trials: list[Trial], col: Column, where: str) -> Cell:
    ok = [t for t in trials if t.ok and number(t.get(col.metric)) is not None]
    if not ok:
        failed = [t for t in trials if not t.ok]
        return Cell(status="failed" if failed else "missing", trials=[t.hash for t in failed])
    if col.spec.aggregate == Aggregate.single and len(ok) > 1:
        raise ReportError(
            f"layout cell {where} / {col.label} has {len(ok)} trials (hashes "
            f"{', '.join(t.hash[:8] for t in ok)}; they differ in {_differing(ok)}); expected one: "
            f"add a layout 'where' filter or use aggregate: mean")
    cell = Cell(status="ok", trials=[t.hash for t in ok])
    cell.value = fmean(float(t.get(col.metric)) for t in ok) * col.scale
    if col.spec.paren:
        parens = [number(t.get(col.spec.paren)) for t in ok]
        if all(p is not None for p in parens):
            cell.paren = fmean(parens) * col.spec.paren_scale  # type: ignore[arg-type]
    if col.spec.ci and len(ok) == 1:
        cell.scores = ok[0].scores(col.metric)
    cell.text = format(cell.value, col.spec.format)
    if cell.paren is not None:
        cell.text += f" ({format(cell.paren, col.spec.paren_format)})"
    return cell


def _better(a: float, b: float, direction: Direction) -> bool:
    return a > b if direction == Direction.max else a < b


def _rounded(cell: Cell, col: Column) -> float:
    """The value as shown (so values that print alike tie for best); the raw value if the format is not a number."""
    if cell.value is None:
        return math.nan
    try:
        return float(format(cell.value, col.spec.format))
    except ValueError:
        return cell.value


def _finish_block(block: Block, columns: list[Column], layout: LayoutConfig, stats: StatsConfig) -> None:
    """Intervals, paired tests and bold for one block (rows compared only within their block)."""
    ref = next((r for r in block.rows if r.value == layout.reference), None)
    for col in columns:
        cells = [(r, r.cells[col.id]) for r in block.rows]
        for _, cell in cells:
            if cell.scores:
                cell.n = len(cell.scores)
                lo, hi = st.interval(list(cell.scores.values()), stats)
                cell.low, cell.high = lo * col.scale, hi * col.scale
        if col.spec.ci:
            base = [(r, c) for r, c in cells if r.value in layout.baselines and c.value is not None]
            best = None
            for r, c in base:
                if best is None or _better(c.value, best[1].value, col.spec.direction):  # type: ignore[arg-type]
                    best = (r, c)
            ref_cell = ref.cells[col.id] if ref is not None else None
            for r, c in cells:
                if not c.scores or r is ref:
                    continue
                if ref_cell is not None and ref_cell.scores:
                    c.p_ref = st.paired_p(c.scores, ref_cell.scores, stats)
                if best is not None and r.value not in layout.baselines and best[1].scores:
                    c.p_best = st.paired_p(c.scores, best[1].scores, stats)
                    c.best_baseline = best[0].label
                c.mark = ("†" if c.p_ref is not None and c.p_ref < stats.alpha else "") + \
                         ("‡" if c.p_best is not None and c.p_best < stats.alpha else "")
        if col.spec.direction != Direction.none:
            shown = [_rounded(c, col) for _, c in cells if c.value is not None]
            if shown:
                top = max(shown) if col.spec.direction == Direction.max else min(shown)
                for _, c in cells:
                    c.bold = c.value is not None and _rounded(c, col) == top


def build_table(trials: list[Trial], layout: LayoutConfig, stats: StatsConfig, sweeps: Sequence[str] = ()) -> Table:
    """The table of ``layout`` over ``trials`` (see the module docstring for the rules)."""
    kept = [t for t in trials if all(v is None or t.get(k) in list(v) for k, v in layout.where.items())]
    if not kept:
        raise ReportError(f"layout={layout.name!r}: no trial in the sweep folders matches its 'where' "
                          f"{dict(layout.where) or ''}".rstrip())
    groups = _ordered(values(kept, layout.group), list(layout.group_order)) if layout.group else [None]
    columns: list[Column] = []
    group_info = []
    for g in groups:
        cols = _columns(kept, layout, g)
        columns += cols
        label = layout.group_label.format(field=layout.group, value=g) if layout.group else ""
        group_info.append((g, label, len(cols)))
    if not columns:
        raise ReportError(f"layout={layout.name!r}: no result key of the sweep folders matches its columns "
                          f"({', '.join(c.metric for c in layout.columns)}); expected trials that report them")
    blocks = []
    for b in (_ordered(values(kept, layout.block), []) if layout.block else [None]):
        in_block = [t for t in kept if _match(t, layout.block, b)]
        block = Block(value=b, label=layout.block_label.format(value=b) if layout.block else "")
        for r in _ordered(values(in_block, layout.row), list(layout.order)):
            row = Row(value=r, label=layout.labels.get(str(r), str(r)))
            in_row = [t for t in in_block if t.get(layout.row) == r]
            for col in columns:
                matching = [t for t in in_row if _match(t, layout.group, col.group) and _match(t, col.spec.per, col.per)]
                where = " / ".join(x for x in (block.label, row.label, str(col.group) if layout.group else "") if x)
                row.cells[col.id] = _cell(matching, col, where)
            block.rows.append(row)
        _finish_block(block, columns, layout, stats)
        blocks.append(block)
    return Table(layout=layout, stats=stats, columns=columns, groups=group_info, blocks=blocks,
                 footnotes=_footnotes(layout, stats, blocks, columns), sweeps=list(sweeps))


def _footnotes(layout: LayoutConfig, stats: StatsConfig, blocks: list[Block], columns: list[Column]) -> list[str]:
    cells = [c for b in blocks for r in b.rows for c in r.cells.values()]
    notes = []
    ci_text, test_text = st.describe(stats)
    if any(c.low is not None for c in cells):
        notes.append(ci_text + ".")
    if any(c.p_ref is not None or c.p_best is not None for c in cells):
        ref = layout.labels.get(str(layout.reference), layout.reference_label) if layout.reference else None
        parts = []
        if ref is not None:
            parts.append(f"† p < {stats.alpha:g} against {ref}")
        present = [b for b in layout.baselines if any(r.value == b for blk in blocks for r in blk.rows)]
        if present:
            names = "/".join(layout.labels.get(b, b) for b in present)
            parts.append(f"‡ p < {stats.alpha:g} against the best baseline of the column ({names})")
        notes.append("; ".join(parts) + f": {test_text}, on the samples both rows scored.")
    if any(c.status == "failed" for c in cells):
        notes.append("✗ the trial failed (see its folder's traceback.txt).")
    if any(c.status == "missing" for c in cells):
        notes.append("— no trial for this cell in the sweep folders.")
    if any(col.spec.ci for col in columns) and any(c.status == "ok" and c.low is None and c.value is not None
                                                    for col in columns if col.spec.ci
                                                    for b in blocks for r in b.rows for c in [r.cells[col.id]]):
        notes.append("No interval: the metric is not a mean of per-sample scores (or samples.jsonl is absent).")
    if layout.note:
        notes.append(layout.note)
    return notes


__all__ = ["Block", "Cell", "Column", "Row", "Table", "build_table"]
