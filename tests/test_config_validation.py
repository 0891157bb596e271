"""Bad sweep configs stop ``python src/sweep.py -m …`` with one message naming the value and what is allowed,
before Ray starts, a trial is dispatched or a model loads.

Each case is a real command line; they run two at a time (about 1-2 s each). Every case exits with
status 2 and one line, Hydra's own composition errors (unknown key, unknown group option, wrong type,
bad enum) included (``rediprune.config.command_line`` checks them before Hydra runs).
"""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import pin_tiny

REPO = Path(__file__).resolve().parents[1]

# (command-line arguments, substrings the error must contain)
CASES = [
    (["ratio=2"], ["ratio=2.0 is not allowed", "(0, 1]"]),
    (["ratio=0"], ["ratio=0.0 is not allowed", "(0, 1]"]),
    (["alpha=-1"], ["alpha=-1.0 is not allowed", "≥ 0"]),
    (["tau=3"], ["tau=3.0 is not allowed", "[-1, 1]"]),
    (["M=0"], ["M=0 is not allowed", "integer ≥ 1"]),
    (["beta=0.5"], ["beta=0.5 is not allowed", "≥ 1"]),
    (["ratio=abc"], ["ratio='abc' is not allowed", "a number"]),
    (["foo=1"], ["foo=1 is not allowed", "not a parameter", "ratio, alpha"]),
    (["query=foo"], ["query='foo' is not allowed", "expected one of", "exponential"]),
    (["pruner=bar"], ["pruner='bar' is not allowed", "divprune"]),
    (["launch=nowhere"], ["launch='nowhere' is not allowed", "local"]),
    (["search.sampler=cmaes"], ["search.sampler='cmaes' is not allowed", "nsga2, tpe"]),
    (["wandb.mode=sometimes"], ["wandb.mode='sometimes' is not allowed", "auto, online, offline, disabled"]),
    (["launch.num_workers=0"], ["launch.num_workers=0 is not allowed", "integer ≥ 1"]),
    (["launch.cpus_per_worker=0"], ["launch.cpus_per_worker=0.0 is not allowed", "> 0"]),
    (["launch.max_retries=-1"], ["launch.max_retries=-1 is not allowed", "≥ 0"]),
    (["backbone.device=tpu"], ["backbone.device='tpu' is not allowed", "'cpu', 'cuda'"]),
    (["ratio=0.1,2"], ["trial 1 (ratio=2", "ratio=2.0 is not allowed", "(0, 1]"]),  # one bad grid value
    (["search=pareto", "search.n_trials=0"], ["search.n_trials=0 is not allowed", "≥ 1"]),
    (["search=pareto", "search.space.ratio.low=0.0"], ["search.space.ratio.low=0.0 is not allowed", "(0, 1]"]),
    (["search=pareto", "search.space.query.choices=[fast]"], ["search.space.query.choices='fast'", "exponential"]),
    (["search=gamma_space", "hydra.searchpath=[file://{conf}]"],  # a user's search YAML with an unknown name
     ["search.space='gamma' is not allowed", "ratio, alpha, tau, M, beta, query"]),
    (["search=pareto", "pruner.seed=1,2"], ["pruner.seed=1,2", "searches only ratio, alpha"]),
    (["search=pareto", "search.storage=optuna.db"], ["search.storage='optuna.db' is not allowed", "sqlite:///"]),
    (["wandb=online"], ["wandb.mode='online' is not allowed without an API key", "wandb login"]),
]


def _run(case: tuple[int, list[str]], root: Path) -> subprocess.CompletedProcess:
    index, args = case
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["HOME"] = str(root / "home")  # no ~/.netrc: wandb=online must find no key
    args = [a.replace("{conf}", str(root / "conf")) for a in args]
    cmd = [sys.executable, "src/sweep.py", "-m", *pin_tiny(args), f"hydra.sweep.dir={root / str(index)}"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    (root / "home").mkdir()
    (root / "conf" / "search").mkdir(parents=True)
    (root / "conf" / "search" / "gamma_space.yaml").write_text(
        "defaults:\n  - pareto\n  - _self_\nspace:\n  gamma: {low: 0.0, high: 1.0}\n"
    )
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: _run(c, root), enumerate(args for args, _ in CASES)))
    return root, results


@pytest.mark.parametrize("index", range(len(CASES)), ids=[" ".join(a) for a, _ in CASES])
def test_bad_value_stops_before_anything_runs(outcomes, index):
    root, results = outcomes
    args, expected = CASES[index]
    proc = results[index]
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for text in expected:
        assert text in proc.stderr, f"{text!r} missing from:\n{proc.stderr}"
    folder = root / str(index)
    assert not (folder / "results.jsonl").exists() and not (folder / "0").exists()  # nothing dispatched
    assert "Ray" not in proc.stderr and "loaded" not in proc.stdout  # no Ray started, no model loaded


def test_at_least_fifteen_bad_inputs():
    assert len(CASES) >= 15
