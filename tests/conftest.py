"""Shared fixtures: compose a RunConfig from conf/ as the CLI would, with HF_HOME in a temporary folder."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The embedded default is the trained demo world; unit and pipeline tests pin the seeded tiny backbone and
# its 8-doc task (seconds), unless a test chooses its own.
TINY = ("backbone=tiny_llava", "dataset=tiny_image")


def pin_tiny(overrides) -> list[str]:
    """``overrides`` plus the tiny backbone/dataset for every group the overrides leave to the default."""
    given = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    return list(overrides) + [o for o in TINY if o.split("=", 1)[0] not in given]


@pytest.fixture(scope="session")
def hf_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One HF_HOME for the session (lmms-eval's dataset cache of the bundled tasks)."""
    return tmp_path_factory.mktemp("hf_home")


@pytest.fixture
def compose_run(hf_home: Path, monkeypatch: pytest.MonkeyPatch):
    """``compose_run("dataset=tiny_video", "ratio=0.25")`` → checked RunConfig from ``conf/``."""
    from hydra import compose, initialize_config_dir

    from rediprune.config import load, register_configs

    register_configs()
    monkeypatch.setenv("HF_HOME", str(hf_home))  # run_evaluation sets it again; restored after the test

    def make(*overrides: str):
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[f"hf_home={hf_home}", *pin_tiny(overrides)])
        return load(cfg)

    return make
