"""Every pinned sweep in sweeps/ composes through the real CLI and passes the config checks."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rediprune.sweep.config import load_sweep as load

REPO = Path(__file__).resolve().parents[1]
PINNED = sorted(p.stem for p in (REPO / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("name", PINNED)
def test_pinned_sweep_composes_and_validates(name):
    if "demo_" in (REPO / "sweeps" / f"{name}.yaml").read_text() and not (REPO / "conf/backbone/demo_image.yaml").is_file():
        pytest.skip("the demo backbones (issue 8) are not in this tree yet")
    shown = subprocess.run(
        [sys.executable, "src/sweep.py", "--config-dir", "sweeps", "--config-name", name, "--cfg", "all"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    cfg = OmegaConf.create(shown.stdout)
    assert cfg.search.name == name  # each pinned sweep writes to its own folder
    params = dict(cfg.hydra.sweeper.params or {})
    assert params, "a pinned sweep names the values it sweeps"
    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    run = load(job)
    for key, values in params.items():  # every swept value is a valid choice or number
        for value in str(values).split(","):
            if key in ("dataset", "pruner", "query", "backbone"):
                assert (REPO / "conf" / key / f"{value}.yaml").is_file(), (key, value)
            else:
                load(OmegaConf.merge(job, {key: float(value)}))
    assert run.backbone.name and run.dataset.task
    from rediprune.reports.layout import load_layout

    for layout in cfg.search.report:  # the paper-table layouts it writes at its end exist and are valid
        assert load_layout(layout, [REPO / "conf"]).name == layout
