"""``python src/evaluate.py``: the embedded default end to end, and bad input failing before any model loads."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import pin_tiny

SCRIPT = Path(__file__).resolve().parents[1] / "src" / "evaluate.py"


def _evaluate(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "HF_HOME"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *pin_tiny(overrides)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_default_run_writes_metrics_json(tmp_path):
    proc = _evaluate(tmp_path)  # no overrides: tiny LLaVA on rediprune_tiny_image, ReDiPrune r = 0.15
    assert proc.returncode == 0, proc.stderr[-2000:]
    [path] = list((tmp_path / "outputs" / "runs").glob("*/*/metrics.json"))
    metrics = json.loads(path.read_text())
    assert metrics["backbone"] == "tiny_llava" and metrics["dataset"] == "tiny_image"
    assert metrics["pruner"] == "rediprune" and metrics["ratio"] == 0.15
    assert metrics["samples"] == 8 and metrics["errors"] == 0
    assert metrics["visual_tokens_per_frame_before"] == 16 and metrics["visual_tokens_per_frame_after"] == 2
    for key in ("primary_metric", "metric/exact_match", "tflops", "tflops_full", "tflops_ratio", "text_tokens_mean",
                "prefill_ms", "e2e_ms", "selection_ms", "peak_mem_mb", "measured_tflops"):
        assert isinstance(metrics[key], float), key
    assert (path.parent / "config.yaml").read_text().count("ratio: 0.15") == 1
    assert (tmp_path / "outputs" / "hf_home" / "datasets").is_dir()  # HF_HOME from the config, under outputs/
    assert '"primary_metric"' in proc.stdout


@pytest.mark.parametrize(
    "override,message",
    [
        ("ratio=2", "error: ratio=2.0 is not allowed; expected a number in (0, 1]"),
        ("alpha=-1", "error: alpha=-1.0 is not allowed; expected a finite number ≥ 0"),
        ("dataset.limit=0", "error: dataset.limit=0 is not allowed; expected null or an integer ≥ 1"),
        ("backbone.device=tpu", "error: backbone.device='tpu' is not allowed; expected 'cpu', 'cuda' or 'cuda:N'"),
        ("dataset.task=rediprune_tiny_imag", "error: dataset.task='rediprune_tiny_imag' is not allowed"),
    ],
)
def test_bad_values_fail_in_one_line_before_loading(tmp_path, override, message):
    proc = _evaluate(tmp_path, override)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and proc.stderr.startswith(message)
    assert "Traceback" not in proc.stderr and "loaded" not in proc.stdout
    assert not list(tmp_path.glob("outputs/runs/*/*/metrics.json"))


@pytest.mark.parametrize(
    "override,fragment",
    [
        ("pruner=foo", "error: pruner='foo' is not allowed; expected one of cdpruner, divprune"),
        ("query.strategy=bogus", "error: query.strategy='bogus' is not allowed; expected one of none, average, middle_peak"),
        ("ratio=abc", "error: ratio='abc' is not allowed; expected a number"),
    ],
)
def test_bad_names_and_types_fail_at_composition(tmp_path, override, fragment):
    proc = _evaluate(tmp_path, override)
    assert proc.returncode == 2
    assert proc.stderr.startswith(fragment) and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_one_evaluation_composes_no_sweep_machinery(tmp_path):
    """evaluate.py's config is the evaluation's only: Hydra's own sweeper/launcher, no search/launch/wandb."""
    shown = subprocess.run([sys.executable, str(SCRIPT), "--cfg", "all"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(shown.stdout)
    assert not {"search", "launch", "wandb"} & set(cfg)
    assert "rediprune" not in cfg.hydra.launcher._target_ and "rediprune" not in cfg.hydra.sweeper._target_
    loaded = subprocess.run([sys.executable, "-c", "import sys, rediprune.models; "
                             "print(sorted(m for m in sys.modules if m.startswith('rediprune.sweep')))"],
                            capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0 and loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr
