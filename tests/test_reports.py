"""The report package on small hand-made sweep folders whose right answers are known."""
from __future__ import annotations

import csv
import io
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rediprune.reports import make_reports, make_table
from rediprune.reports.layout import LayoutConfig, ReportError, StatsConfig, layout_from, load_layout
from rediprune.reports.render import csv_text, latex, markdown, tidy_rows, wandb_tables
from rediprune.reports.stats import interval, paired_p

ROOT = Path(__file__).resolve().parents[1]
FAST = StatsConfig(resamples=2000, test_resamples=2000)


def make_sweep(folder: Path, trials: list[dict], primary: str = "acc") -> Path:
    """A sweep folder as the sweep writes it: results.jsonl rows, and per trial config.yaml + samples.jsonl.

    Each trial dict: row fields (pruner, dataset, …), ``scores`` (per-sample list, or a dict type -> list
    for per-type metrics), optional ``status`` and ``value`` (a row value that is not the samples' mean).
    """
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, spec in enumerate(trials):
        spec = dict(spec)
        scores = spec.pop("scores", None)
        status = spec.pop("status", "ok")
        value = spec.pop("value", None)
        num = spec.pop("trial", i)
        row = {"trial": num, "hash": spec.pop("hash", f"h{folder.name}{num}"), "status": status,
               "job_dir": str(num), "backbone": "bb", "dataset": "ds", "ratio": 0.1, "query": "exponential",
               "tflops": 1.0, "tflops_ratio": 0.1, **spec}
        job = folder / str(num)
        job.mkdir(exist_ok=True)
        (job / "config.yaml").write_text(f"dataset:\n  primary_metric: {primary}\n")
        if status == "ok" and scores is not None:
            samples = []
            if isinstance(scores, dict):  # per type
                doc = 0
                for typ, vals in scores.items():
                    for v in vals:
                        samples.append({"task": "t", "doc_id": doc, "acc": v, f"acc_{typ}": v})
                        doc += 1
                for typ, vals in scores.items():
                    row[f"metric/acc_{typ}"] = float(np.mean(vals))
            else:
                samples = [{"task": "t", "doc_id": d, "acc": v} for d, v in enumerate(scores)]
            flat = [s["acc"] for s in samples]
            row["primary_metric"] = float(np.mean(flat)) if value is None else value
            row["metric/acc"] = row["primary_metric"]
            (job / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
        lines.append(json.dumps(row) + "\n")
    (folder / "results.jsonl").write_text("".join(lines))
    return folder


def layout(**kw) -> LayoutConfig:
    base = dict(
        name="t", title="T", row="pruner", order=["none", "divprune", "cdpruner", "rediprune"],
        labels={"none": "Original", "divprune": "DivPrune", "cdpruner": "CDPruner", "rediprune": "ReDiPrune"},
        reference="none", baselines=["divprune", "cdpruner"],
        columns=[{"metric": "primary_metric", "per": "dataset", "label": "{dataset} Acc", "scale": 100,
                  "format": ".1f", "ci": True},
                 {"metric": "tflops", "label": "TFLOPs", "direction": "min", "format": ".3f", "aggregate": "mean",
                  "paren": "tflops_ratio", "paren_scale": 100, "paren_format": ".2f"}],
    )
    base.update(kw)
    return layout_from(base)


def cells(table) -> dict[tuple, dict]:
    return {(r["row"], r["per"], r["metric"]): r for r in tidy_rows(table)}


N = 20
ZEROS, ONES = [0.0] * N, [1.0] * N
HALF = [1.0, 0.0] * (N // 2)


def test_values_intervals_marks_and_bold(tmp_path):
    d = make_sweep(tmp_path / "s", [
        {"pruner": "none", "scores": HALF},
        {"pruner": "divprune", "scores": HALF, "tflops": 0.5},
        {"pruner": "cdpruner", "scores": ZEROS, "tflops": 0.5},
        {"pruner": "rediprune", "scores": ONES, "tflops": 0.5},
    ])
    table = make_table([d], layout(), FAST)
    c = cells(table)
    assert [r.label for r in table.blocks[0].rows] == ["Original", "DivPrune", "CDPruner", "ReDiPrune"]
    red = c[("rediprune", "ds", "primary_metric")]
    assert red["value"] == 100.0 and red["ci_low"] == red["ci_high"] == 100.0  # constant sample: [v, v]
    assert red["best"] and not c[("none", "ds", "primary_metric")]["best"]
    # 10 of 20 pairs differ, all one way: exact sign-flip p = 2 / 2**10; estimated from 2000 resamples
    assert red["p_vs_reference"] < 0.01
    assert red["best_baseline"] == "DivPrune"  # DivPrune 50 beats CDPruner 0
    assert red["p_vs_best_baseline"] < 0.01
    assert red["mark"] == "†‡"
    div = c[("divprune", "ds", "primary_metric")]
    assert div["p_vs_reference"] == 1.0 and div["mark"] == "" and div["p_vs_best_baseline"] is None
    assert c[("cdpruner", "ds", "primary_metric")]["mark"] == "†"  # 50 → 0 is significant, baselines not vs best
    half = c[("none", "ds", "primary_metric")]
    assert half["value"] == 50.0 and half["ci_low"] < 50.0 < half["ci_high"]
    tf = c[("rediprune", None, "tflops")]
    assert tf["shown"] == "0.500 (10.00)" and tf["best"] and c[("divprune", None, "tflops")]["best"]  # a tie
    assert not c[("none", None, "tflops")]["best"]
    md = markdown(table)
    assert "| ReDiPrune | **100.0** [100.0, 100.0]†‡ | **0.500 (10.00)** |" in md
    assert "ds Acc ↑" in md and "TFLOPs ↓" in md
    assert "permutation" in md and "† p < 0.05 against Original" in md


def test_tie_for_best_bolds_every_tied_row(tmp_path):
    d = make_sweep(tmp_path / "s", [
        {"pruner": "none", "scores": ZEROS},
        {"pruner": "divprune", "scores": ONES},
        {"pruner": "rediprune", "scores": ONES},
    ])
    table = make_table([d], layout(), FAST)
    c = cells(table)
    assert c[("divprune", "ds", "primary_metric")]["best"] and c[("rediprune", "ds", "primary_metric")]["best"]
    assert not c[("none", "ds", "primary_metric")]["best"]
    assert c[("rediprune", "ds", "primary_metric")]["p_vs_best_baseline"] == 1.0  # identical to DivPrune


def test_missing_cell_and_failed_trial(tmp_path):
    d = make_sweep(tmp_path / "s", [
        {"pruner": "none", "dataset": "a", "scores": HALF},
        {"pruner": "none", "dataset": "b", "scores": HALF},
        {"pruner": "rediprune", "dataset": "a", "scores": ONES},
        {"pruner": "rediprune", "dataset": "b", "status": "failed", "error": "boom"},
        {"pruner": "divprune", "dataset": "a", "scores": HALF},  # no divprune trial on b: missing
    ])
    table = make_table([d], layout(), FAST)
    c = cells(table)
    assert c[("rediprune", "b", "primary_metric")]["status"] == "failed"
    assert c[("rediprune", "b", "primary_metric")]["shown"] == "✗"
    assert c[("divprune", "b", "primary_metric")]["status"] == "missing"
    assert c[("divprune", "b", "primary_metric")]["shown"] == "—"
    assert c[("rediprune", "a", "primary_metric")]["status"] == "ok"
    md = markdown(table)
    assert "✗ the trial failed" in md and "— no trial for this cell" in md
    assert r"$\times$" in latex(table) and "---" in latex(table)


def test_two_sweeps_merged_later_folder_wins_and_ok_beats_failed(tmp_path):
    a = make_sweep(tmp_path / "a", [
        {"pruner": "none", "scores": HALF, "hash": "n"},
        {"pruner": "divprune", "scores": ZEROS, "hash": "d"},
        {"pruner": "rediprune", "scores": ONES, "hash": "r"},
    ])
    b = make_sweep(tmp_path / "b", [
        {"pruner": "divprune", "scores": ONES, "hash": "d"},  # rerun of the same config: wins
        {"pruner": "rediprune", "status": "failed", "hash": "r"},  # a failed rerun does not hide a result
        {"pruner": "cdpruner", "scores": HALF, "hash": "c"},
    ])
    table = make_table([a, b], layout(), FAST)
    c = cells(table)
    assert c[("divprune", "ds", "primary_metric")]["value"] == 100.0
    assert c[("rediprune", "ds", "primary_metric")]["value"] == 100.0
    assert c[("cdpruner", "ds", "primary_metric")]["value"] == 50.0
    assert table.sweeps == ["a", "b"]
    assert make_table([b, a], layout(), FAST).blocks[0].rows[1].cells  # order changes the winner
    assert cells(make_table([b, a], layout(), FAST))[("divprune", "ds", "primary_metric")]["value"] == 0.0


def test_two_trials_in_one_cell_is_an_error_naming_what_differs(tmp_path):
    d = make_sweep(tmp_path / "s", [
        {"pruner": "rediprune", "scores": ONES, "alpha": 0.5},
        {"pruner": "rediprune", "scores": ZEROS, "alpha": 1.0},
    ])
    with pytest.raises(ReportError, match="differ in alpha"):
        make_table([d], layout(), FAST)
    table = make_table([d], layout(where={"alpha": [1.0]}), FAST)
    assert cells(table)[("rediprune", "ds", "primary_metric")]["value"] == 0.0


def test_metric_that_is_not_a_sample_mean_gets_no_interval(tmp_path):
    d = make_sweep(tmp_path / "s", [{"pruner": "none", "scores": HALF, "value": 0.9}])
    table = make_table([d], layout(), FAST)
    cell = cells(table)[("none", "ds", "primary_metric")]
    assert cell["value"] == 90.0 and cell["ci_low"] is None
    assert "not a mean of per-sample scores" in markdown(table)


def test_per_type_columns_from_a_glob(tmp_path):
    d = make_sweep(tmp_path / "s", [
        {"pruner": "none", "scores": {"color": [1.0] * 10, "count": [0.0] * 10}},
        {"pruner": "rediprune", "scores": {"color": [1.0] * 10, "count": [1.0] * 10}},
    ])
    lay = load_layout("types", [ROOT / "conf"])
    table = make_table([d], lay, FAST)
    assert [c.label for c in table.columns] == ["ds color", "ds count"]
    c = cells(table)
    assert c[("rediprune", "ds", "metric/acc_count")]["value"] == 100.0
    assert c[("rediprune", "ds", "metric/acc_count")]["n"] == 10  # only the count samples
    assert c[("rediprune", "ds", "metric/acc_count")]["p_vs_reference"] == pytest.approx(2 / 2**10)  # 2^10 ≤ 2000: exact
    assert c[("rediprune", "ds", "metric/acc_color")]["p_vs_reference"] == 1.0


def test_blocks_and_groups(tmp_path):
    d = make_sweep(tmp_path / "s", [
        {"pruner": p, "backbone": bb, "ratio": r, "dataset": ds, "scores": ONES if p == "rediprune" else HALF}
        for p in ("none", "rediprune") for bb in ("x", "y") for r, ds in ((0.15, "a"), (0.1, "b"))
    ])
    table = make_table([d], layout(block="backbone", group="ratio", group_order=[0.15, 0.1],
                                   group_label="r = {value}"), FAST)
    assert [g[:2] for g in table.groups] == [(0.15, "r = 0.15"), (0.1, "r = 0.1")]
    assert [c.label for c in table.columns] == ["a Acc", "TFLOPs", "b Acc", "TFLOPs"]  # a only at 0.15
    assert [b.label for b in table.blocks] == ["x", "y"]
    tex = latex(table)
    assert r"\multicolumn{2}{c}{r = 0.15}" in tex and r"\cmidrule(lr){3-4}" in tex
    assert tex.count(r"\midrule") == 2 and r"\toprule" in tex and r"\bottomrule" in tex
    from rediprune.reports.render import tex_escape

    assert tex_escape("p < 0.05 † a_b 50% ↑") == r"p $<$ 0.05 $^\dagger$ a\_b 50\% $\uparrow$"


def test_csv_is_tidy_and_wandb_tables_match(tmp_path):
    d = make_sweep(tmp_path / "s", [{"pruner": "none", "scores": HALF}, {"pruner": "rediprune", "scores": ONES}])
    table = make_table([d], layout(), FAST)
    rows = list(csv.DictReader(io.StringIO(csv_text(table))))
    assert len(rows) == 2 * 2  # one line per cell
    red = next(r for r in rows if r["row"] == "rediprune" and r["metric"] == "primary_metric")
    assert float(red["value"]) == 100.0 and float(red["ci_low"]) == 100.0 and red["n"] == "20"
    tables = wandb_tables(table)
    shown = tables["report/t"]
    assert shown.columns == ["Method", "ds Acc ↑", "TFLOPs ↓"]
    assert shown.data[1][0] == "ReDiPrune" and shown.data[1][1].startswith("100.0")
    assert len(tables["report/t_cells"].data) == 4


def test_written_files_are_identical_on_rerun(tmp_path):
    d = make_sweep(tmp_path / "s", [{"pruner": "none", "scores": HALF}, {"pruner": "rediprune", "scores": HALF[::-1]}])
    first = make_reports([d], [layout()], stats=FAST)
    texts = {k: p.read_bytes() for k, p in first.paths["t"].items()}
    assert set(texts) == {"md", "tex", "csv"} and first.paths["t"]["md"].parent == d / "reports"
    again = make_reports([d], [layout()], stats=FAST)
    assert {k: p.read_bytes() for k, p in again.paths["t"].items()} == texts


def test_bootstrap_matches_exact_enumeration():
    """All 5^5 resamples of five values enumerated by hand: the exact bootstrap distribution of the mean,
    whose 2.5 % and 97.5 % quantiles the percentile interval estimates (means lie on a 0.2 grid)."""
    x = [0.0, 1.0, 2.0, 3.0, 10.0]
    means = np.array([np.mean(s) for s in itertools.product(x, repeat=len(x))])
    exact_low = np.quantile(means, 0.025, method="inverted_cdf")
    exact_high = np.quantile(means, 0.975, method="inverted_cdf")
    assert (exact_low, exact_high) == (pytest.approx(0.8), pytest.approx(6.8))
    low, high = interval(x, StatsConfig(resamples=100_000))
    assert low == pytest.approx(exact_low, abs=0.2) and high == pytest.approx(exact_high, abs=0.2)


def test_bootstrap_matches_normal_theory_for_a_proportion():
    """Large binary sample: the interval is p ± 1.96 √(p(1-p)/n) up to resampling noise."""
    p, n = 0.3, 1000
    x = [1.0] * int(p * n) + [0.0] * int((1 - p) * n)
    half = 1.959964 * np.sqrt(p * (1 - p) / n)
    low, high = interval(x, StatsConfig(resamples=20000))
    assert low == pytest.approx(p - half, abs=0.004) and high == pytest.approx(p + half, abs=0.004)


def test_bootstrap_is_seeded():
    x = list(np.random.default_rng(1).random(50))
    assert interval(x, StatsConfig(resamples=500)) == interval(x, StatsConfig(resamples=500))
    assert interval(x, StatsConfig(resamples=500)) != interval(x, StatsConfig(resamples=500, seed=1))


def test_paired_permutation_matches_exact_sign_flips():
    a = {("t", i): v for i, v in enumerate([0.9, 0.4, 0.7, 0.8, 0.3, 0.6, 0.95, 0.5])}
    b = {("t", i): v for i, v in enumerate([0.5, 0.5, 0.2, 0.6, 0.1, 0.7, 0.45, 0.3])}
    diff = np.array([a[k] - b[k] for k in sorted(a)])
    observed = abs(diff.mean())
    flips = [abs((diff * np.array(s)).mean()) for s in itertools.product((1, -1), repeat=len(diff))]
    exact = np.mean([f >= observed - 1e-12 for f in flips])
    assert paired_p(a, b, StatsConfig()) == pytest.approx(exact)
    assert paired_p(a, {("t", 0): 1.0}, StatsConfig()) is None  # fewer than two shared samples
    wil = paired_p(a, b, StatsConfig(test="wilcoxon"))
    from scipy.stats import wilcoxon

    assert wil == pytest.approx(wilcoxon(diff).pvalue)


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "conf/report/layout").glob("*.yaml")))
def test_shipped_layouts_load(name):
    lay = load_layout(name, [ROOT / "conf"])
    assert lay.name == name and lay.columns


def test_bad_layout_values_are_one_line_errors(tmp_path):
    with pytest.raises(ReportError, match=r"layout='nope' is not allowed; expected one of .*table1"):
        load_layout("nope", [ROOT / "conf"])
    with pytest.raises(ReportError, match="format"):
        layout(columns=[{"metric": "x", "format": "%%z"}])
    with pytest.raises(ReportError, match="layout: "):
        layout_from({"colums": []})
    with pytest.raises(ReportError, match="expected a sweep folder"):
        make_table([tmp_path], layout(), FAST)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "src/report.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_cli_writes_tables_and_reruns_identically(tmp_path):
    d = make_sweep(tmp_path / "my sweep", [
        {"pruner": "none", "dataset": "demo_video", "scores": HALF},
        {"pruner": "rediprune", "dataset": "demo_video", "scores": ONES},
    ])
    out = tmp_path / "out"
    first = _cli(str(d), "layout=table1", "stats.resamples=500", f"out={out}")
    assert first.returncode == 0, first.stderr
    assert "Demo-Video Acc ↑" in first.stdout and "**100.00** [100.00, 100.00]†" in first.stdout
    files = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(files) == {"table1.md", "table1.tex", "table1.csv"}
    assert not (ROOT / "report.log").exists() and not (ROOT / ".hydra").exists()  # only the tables
    again = _cli(str(d), "layout=table1", "stats.resamples=500", f"out={out}")
    assert again.returncode == 0 and {p.name: p.read_bytes() for p in out.iterdir()} == files
    bad = _cli(str(d), "layout=table1", "stats.confidence=1.5")
    assert bad.returncode == 2 and bad.stderr.strip() == \
        "error: stats.confidence=1.5 is not allowed; expected a number in (0, 1)"
    missing = _cli(str(tmp_path / "nowhere"), "layout=table1")
    assert missing.returncode == 2 and "expected a sweep folder holding results.jsonl" in missing.stderr


def test_trial_intervals(tmp_path):
    from rediprune.reports import trial_intervals

    d = make_sweep(tmp_path / "s", [
        {"pruner": "none", "scores": HALF, "tflops": 2.0},
        {"pruner": "rediprune", "scores": ONES, "tflops": 1.0},
        {"pruner": "divprune", "status": "failed"},
        {"pruner": "cdpruner", "scores": HALF, "value": 0.9},  # not a sample mean: no interval
    ])
    rows = [json.loads(line) for line in (d / "results.jsonl").read_text().splitlines()]
    bars = trial_intervals(d, rows, "primary_metric", FAST)
    assert set(bars) == {rows[0]["hash"], rows[1]["hash"]}
    assert bars[rows[1]["hash"]] == (1.0, 1.0) and bars[rows[0]["hash"]][0] < 0.5 < bars[rows[0]["hash"]][1]


def test_header_uses_primary_metric_name_of_the_rows(tmp_path):
    d = make_sweep(tmp_path / "s", [{"pruner": "none", "scores": HALF, "primary_metric_name": "exact_match"}])
    lay = layout(columns=[{"metric": "primary_metric", "per": "dataset", "ci": True}])
    assert [c.header for c in make_table([d], lay, FAST).columns] == ["ds exact_match ↑"]
    lay = layout_from({**lay.__dict__, "columns": [{"metric": "primary_metric", "per": "dataset"}],
                       "datasets": {"ds": {"label": "DS", "metric": "EM"}}})
    assert [c.header for c in make_table([d], lay, FAST).columns] == ["DS EM ↑"]


def test_column_only_for_some_datasets(tmp_path):
    d = make_sweep(tmp_path / "s", [
        {"pruner": "none", "dataset": "a", "scores": HALF},
        {"pruner": "none", "dataset": "activitynetqa", "scores": HALF, "metric/gpt_eval_score": 3.1},
    ])
    table = make_table([d], load_layout("table1", [ROOT / "conf"]), FAST)
    assert [c.header for c in table.columns] == ["ActivityNet-QA Acc ↑", "a primary_metric ↑", "ActivityNet-QA Score ↑",
                                                 "TFLOPs (ratio %) ↓"]
    assert cells(table)[("none", "activitynetqa", "metric/gpt_eval_score")]["shown"] == "3.10"


def test_positional_sweep_folders_become_one_override():
    import importlib.util

    spec = importlib.util.spec_from_file_location("report_cli", ROOT / "src" / "report.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    argv = ["report.py", "a", "layout=t", "--cfg", "job", "b c", "~x", "it's"]
    assert cli.positional_dirs(argv) == ["report.py", "--cfg", "job", "layout=t", "~x",
                                         "dirs=['a','b c','it\\'s']"]
    assert cli.positional_dirs(["report.py", "layout=t"]) == ["report.py", "layout=t"]


def test_cli_unknown_layout_is_one_line(tmp_path):
    bad = _cli(str(tmp_path), "layout=nope")
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: layout=nope is not allowed; expected layout= one of table1, table2")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_pareto_plots_carry_the_intervals_as_error_bars(tmp_path):
    from rediprune.reports.plots import _yerr
    from rediprune.reports.overview import write_overview

    d = make_sweep(tmp_path / "s", [
        {"pruner": "none", "scores": HALF, "tflops": 2.0, "tflops_full": 2.0},
        {"pruner": "rediprune", "scores": ONES, "tflops": 1.0, "tflops_full": 2.0},
        {"pruner": "cdpruner", "scores": HALF, "value": 0.9, "tflops": 1.0, "tflops_full": 2.0},  # no interval
    ])
    rows = [json.loads(line) for line in (d / "results.jsonl").read_text().splitlines()]
    bars = {rows[0]["hash"]: (0.3, 0.65)}
    assert _yerr(rows[:2], [0.5, 1.0], bars) == [[pytest.approx(0.2), 0.0], [pytest.approx(0.15), 0.0]]
    paths = write_overview(rows, [rows[1]], d, objective="primary_metric", cost="tflops", title="s")
    assert paths["png"].stat().st_size > 0
    assert '"error_y":{"array":[' in paths["html"].read_text().replace(" ", "")
