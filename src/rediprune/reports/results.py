"""Read sweep folders: result rows (``results.jsonl``) and each trial's per-sample scores (``samples.jsonl``).

Usage::

    trials = read_sweeps([Path("outputs/sweeps/a"), Path("outputs/sweeps/b")])   # merged, one per hash
    scores = trials[0].scores("primary_metric")     # {(task, doc_id): score} or None when not per-sample

The sweep's result store writes ``results.jsonl`` (one JSON object per line, the last line of a config
hash wins); this module only reads that format, so reports run over any sweep folder without the sweep
engine. Sweeps given later win for the same config hash; a successful row is never replaced by a failed
one. A trial's folder is its row's ``job_dir`` (relative paths are taken from the sweep folder), or
``<sweep folder>/<trial>`` when the sweep folder was moved.
"""
from __future__ import annotations

import fnmatch
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any, Iterable, Sequence

from omegaconf import OmegaConf

from rediprune.reports.layout import ReportError

RESULTS = "results.jsonl"
SAMPLES = "samples.jsonl"
Key = tuple[str, Any]  # (task, doc_id): what pairs two trials' samples


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class Trial:
    """One result row and where its files are."""

    row: dict[str, Any]
    sweep_dir: Path
    _samples: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.row.get("status", "ok") == "ok"

    @property
    def hash(self) -> str:
        return str(self.row["hash"])

    def get(self, key: str) -> Any:
        return self.row.get(key)

    @property
    def job_dir(self) -> Path:
        recorded = self.row.get("job_dir")
        if recorded:
            path = Path(recorded)
            path = path if path.is_absolute() else self.sweep_dir / path
            if path.is_dir():
                return path
        return self.sweep_dir / str(self.row.get("trial"))

    def samples(self) -> list[dict[str, Any]]:
        """The trial's samples.jsonl lines (empty when the file is absent), read once."""
        if self._samples is None:
            path = self.job_dir / SAMPLES
            self._samples = []
            if path.is_file():
                with open(path) as fh:
                    for line in fh:
                        try:
                            self._samples.append(json.loads(line))
                        except json.JSONDecodeError:
                            continue
        return self._samples

    def primary_pattern(self) -> str | None:
        """``dataset.primary_metric`` of this trial, from its resolved config.yaml."""
        path = self.job_dir / "config.yaml"
        if not path.is_file():
            return None
        return OmegaConf.select(OmegaConf.load(path), "dataset.primary_metric")

    def scores(self, metric: str) -> dict[Key, float] | None:
        """Per-sample scores behind result key ``metric``, keyed by (task, doc_id).

        ``metric/<name>`` reads each sample's ``<name>`` (``metric/<task>/<name>`` only that task's
        samples); ``primary_metric`` reads the keys matching the trial's ``dataset.primary_metric``
        (their mean when a sample has several). The scores are returned only when their mean reproduces
        the row's value: a metric that is not a mean of per-sample scores (F1, a summed P-score, a
        judge's aggregate) gets no interval rather than a wrong one.
        """
        task = None
        if metric == "primary_metric":
            pattern = self.primary_pattern()
        elif metric.startswith("metric/"):
            parts = metric[len("metric/"):].split("/")
            task, pattern = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])
            pattern = pattern.split(",")[0]
        else:
            return None
        if not pattern:
            return None
        out: dict[Key, float] = {}
        for sample in self.samples():
            if task is not None and sample.get("task") != task:
                continue
            values = [v for k, v in sample.items() if fnmatch.fnmatchcase(k, pattern) and number(v) is not None]
            if values:
                out[(str(sample.get("task")), sample.get("doc_id"))] = fmean(float(v) for v in values)
        target = number(self.row.get(metric))
        if not out or target is None or not math.isclose(fmean(out.values()), target, rel_tol=1e-6, abs_tol=1e-9):
            return None
        return out


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """The row a complete line of results.jsonl holds, or None when it is not a JSON object with a string
    ``hash`` (not UTF-8, not JSON: a disk error or a hand edit)."""
    try:
        row = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return row if isinstance(row, dict) and isinstance(row.get("hash"), str) else None


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every complete, readable line of a results.jsonl, in order (not deduplicated; a torn tail skipped)."""
    with open(path, "rb") as fh:
        rows = [parse_line(raw) for raw in fh if raw.endswith(b"\n")]
    return [row for row in rows if row is not None]


def read_sweeps(dirs: Sequence[Path | str]) -> list[Trial]:
    """Trials of every sweep folder, one per config hash (later folders and lines win, ok beats failed)."""
    if not dirs:
        raise ReportError("dirs=[] is not allowed; expected one or more sweep folders (each with results.jsonl)")
    merged: dict[str, Trial] = {}
    for d in dirs:
        folder = Path(d).expanduser().resolve()
        path = folder / RESULTS
        if not path.is_file():
            raise ReportError(f"dirs={str(d)!r} is not allowed; expected a sweep folder holding {RESULTS}")
        for row in read_rows(path):
            old = merged.get(row["hash"])
            trial = Trial(row, folder)
            if old is not None and old.ok and not trial.ok:
                continue
            merged.pop(row["hash"], None)
            merged[row["hash"]] = trial
    return list(merged.values())


def values(trials: Iterable[Trial], key: str) -> list[Any]:
    """Distinct values of ``key`` in first-seen order."""
    seen: dict[Any, None] = {}
    for t in trials:
        seen.setdefault(_hashable(t.get(key)), None)
    return list(seen)


def _hashable(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value


__all__ = ["Key", "RESULTS", "SAMPLES", "Trial", "number", "read_rows", "read_sweeps", "values"]
