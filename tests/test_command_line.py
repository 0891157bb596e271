"""Every mistake of issue 10's list stops the command before Ray starts or a model loads: exit status 2, one
line naming the parameter, the value and what is allowed (with "did you mean" for names).

Each case is a real command line (``src/sweep.py -m …`` or ``src/evaluate.py …``), run two at a time.
Ray's temporary folder is pointed (``RAY_TMPDIR``) at a folder of the case's own, so "no Ray session"
is checked on disk: Ray writes its session folder there on start. Duplicates, value spellings and
ties on the Pareto front are checked on the functions that handle them.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# (entry point, arguments, substrings of the one error line); {root} is the module's temporary folder
CASES = [
    ("sweep", ["pruner=DIVPRUNE"], ["pruner='DIVPRUNE' is not allowed", "expected one of cdpruner",
                                     "did you mean 'divprune'?"]),
    ("sweep", ["backbone=tiny_lava"], ["backbone='tiny_lava' is not allowed", "did you mean 'tiny_llava'?"]),
    ("sweep", ["alhpa=0.5"], ["alhpa=0.5 is not allowed", "ratio, alpha", "did you mean 'alpha'?"]),
    ("sweep", ["search.sampel=tpe"], ["search.sampel=tpe is not allowed", "did you mean 'search.sampler'?"]),
    ("sweep", ["ratio=abc"], ["ratio='abc' is not allowed; expected a number"]),
    ("sweep", ["ratio=0.1,abc"], ["ratio='abc' is not allowed; expected a number"]),  # second grid value
    ("sweep", ["query.strategy=expo"], ["query.strategy='expo' is not allowed", "expected one of none"]),
    ("sweep", ["ratio=0.1,"], ["ratio='0.1,' is not allowed", "comma list without empty items"]),
    ("sweep", ["pruner=schema"], ["pruner='schema' is not allowed; expected one of cdpruner, divprune, none, "
                                  "random, rediprune"]),
    ("sweep", ["query=schema"], ["query='schema' is not allowed"]),
    ("evaluate", ["+alhpa=0.5"], ["+alhpa=0.5 is not allowed", "not a parameter", "did you mean 'alpha'?"]),
    ("sweep", ["+search.skip=1"], ["+search.skip=1 is not allowed", "did you mean 'search.skip_finished'?"]),
    ("sweep", ["alpha=interval(1,0)"], ["alpha=interval(1,0) is not allowed in a grid", "search=pareto"]),
    ("sweep", ["seed=-1"], ["seed=-1 is not allowed", "[0, 2**32 - 1]"]),
    ("evaluate", ["seed=-1"], ["seed=-1 is not allowed", "[0, 2**32 - 1]"]),
    ("sweep", ["dataset.task=typo"], ["dataset.task='typo' is not allowed", "rediprune_tiny_image"]),
    ("sweep", ["search.objective=no_such_metric"], ["search.objective='no_such_metric' is not allowed",
                                                    "metric/<name>", "primary_metric"]),
    ("sweep", ["launch.num_workers=10000"], ["launch.num_workers=10000 is not allowed", "need 10000 CPUs",
                                             "launch.num_workers ≤"]),
    ("sweep", ["launch.address=127.0.0.1:1"], ["launch.address='127.0.0.1:1' is not allowed",
                                               "nothing answers there within 5 s"]),
    ("sweep", ["launch.address=auto"], ["launch.address='auto' is not allowed",  # no cluster on this machine
                                        "Could not find any running Ray instance"]),
    ("sweep", ["hydra.sweep.dir=/proc/rediprune-x"], ["hydra.sweep.dir='/proc/rediprune-x' is not allowed",
                                                      "cannot write in /proc"]),
    ("sweep", ["hydra.sweep.dir={root}/a_file/sweep"], ["/a_file/sweep' is not allowed", "a_file is a file"]),
    ("sweep", ["search=pareto", "search.storage=sqlite:///{root}/missing/optuna.db"],
     ["search.storage='sqlite:///", "/missing does not exist", "an existing folder"]),
    ("sweep", ["search=pareto", "search.storage=mysql://user@host/db"],
     ["search.storage='mysql://user@host/db' is not allowed: its driver is not installed"]),
    ("sweep", ["hydra.searchpath=[file://{root}/conf]", "search=broken"],
     ["/conf/search/broken.yaml:", "invalid YAML", "expected a valid YAML config file"]),
    ("evaluate", ["-m", "ratio=0.1,0.2"], ["-m is not allowed with src/evaluate.py",
                                           "python src/sweep.py -m ratio=0.1,0.2"]),
    ("evaluate", ["ratio=0.1,0.2"], ["ratio=0.1,0.2 is not allowed without -m", "python src/sweep.py -m"]),
    # one plugin runs a sweep's trials (reports, W&B): Hydra's basic sweeper/launcher would skip both
    ("sweep", ["hydra/sweeper=basic"], ["hydra/sweeper=basic is not allowed", "sweep.py's own sweeper"]),
    ("sweep", ["hydra/launcher=basic"], ["hydra/launcher=basic is not allowed", "launch=local or launch=cluster"]),
    # a trial holds the evaluation's config only: a list over a sweep setting would repeat the same trials
    ("sweep", ["launch.num_workers=1,2"], ["launch.num_workers=1,2 is not allowed", "take one value"]),
    # every trial goes through the sweeper (reports, W&B): no trial outside it
    ("sweep-no-m", ["ratio=0.1"], ["src/sweep.py without -m is not allowed", "python src/sweep.py -m ratio=0.1",
                                   "python src/evaluate.py ratio=0.1"]),
]


def _run(index: int, root: Path) -> subprocess.CompletedProcess:
    app, args, _ = CASES[index]
    args = [a.replace("{root}", str(root)) for a in args]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_"))}
    env["RAY_TMPDIR"] = str(root / f"ray{index}")  # a Ray that started would leave its session folder here
    env["HOME"] = str(root / "home")
    if app == "sweep":
        extra = [] if any(a.startswith("hydra.sweep.dir=") for a in args) else [f"hydra.sweep.dir={root / str(index)}"]
        cmd = [sys.executable, str(REPO / "src/sweep.py"), "-m", *args, *extra]
    elif app == "sweep-no-m":
        cmd = [sys.executable, str(REPO / "src/sweep.py"), *args]
    else:
        cmd = [sys.executable, str(REPO / "src/evaluate.py"), *args]
    cwd = root / f"cwd{index}"
    cwd.mkdir()
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    (root / "home").mkdir()
    (root / "a_file").write_text("not a folder")
    (root / "conf" / "search").mkdir(parents=True)
    (root / "conf" / "search" / "broken.yaml").write_text("defaults:\n  - pareto\nkind: [grid\n")
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda i: _run(i, root), range(len(CASES))))
    return root, results


@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"{c[0]} {' '.join(c[1])}" for c in CASES])
def test_mistake_stops_in_one_line_before_ray_or_a_model(outcomes, index):
    root, results = outcomes
    app, args, expected = CASES[index]
    proc = results[index]
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for text in expected:
        assert text in lines[0], f"{text!r} missing from:\n{lines[0]}"
    if "schema" in args[0]:
        assert "schema" not in lines[0].split("expected", 1)[1]  # never offered as a choice
    ray_tmp = root / f"ray{index}"
    assert not ray_tmp.exists() or not any(ray_tmp.rglob("session_*")), "a Ray session started"
    assert "loaded" not in proc.stdout and not list((root / f"cwd{index}").rglob("metrics.json"))
    assert not (root / str(index) / "results.jsonl").exists() and not (root / str(index) / "0").exists()


# ---------------------------------------------------------------------------------- canonical sweeps
def test_sweep_name_depends_on_values_not_spelling_or_order():
    from rediprune.sweep.naming import sweep_name

    same = [["ratio=0.1,0.05"], ["ratio=0.05,0.10"], ["ratio=0.05,0.1,0.1"], ["ratio=5e-2,0.1"]]
    names = {sweep_name(None, "grid", o) for o in same}
    assert len(names) == 1
    assert sweep_name(None, "grid", ["ratio=0.1", "alpha=1"]) == sweep_name(None, "grid", ["alpha=1.0", "ratio=0.10"])
    assert sweep_name(None, "grid", ["ratio=0.1"]) != sweep_name(None, "grid", ["ratio=0.2"])


def test_grid_runs_each_listed_value_once(capsys):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from rediprune.sweep.grid import unique_values

    parser = OverridesParser.create()
    out = unique_values(parser, parser.parse_overrides(["ratio=0.05,0.05,0.1,0.10", "alpha=0,1", "query=none"]))
    assert [list(o.sweep_string_iterator()) if o.is_sweep_override() else o.get_value_string() for o in out] == [
        ["0.05", "0.1"], ["0", "1"], "none"]
    err = capsys.readouterr().err
    assert "note: ratio=0.05,0.05,0.1,0.10 lists a value more than once; each runs once: ratio=0.05,0.1" in err
    assert "alpha" not in err


# ---------------------------------------------------------------------------------- front and summary
def test_pareto_front_keeps_ties_as_optunas_best_trials():
    import optuna

    from rediprune.reports.pareto import pareto_front

    points = [(0.5, 1.0), (0.6, 2.0), (0.6, 2.0), (0.4, 2.0), (0.7, 3.0), (0.7, 3.0), (0.2, 0.5)]
    rows = [{"hash": str(i), "trial": i, "primary_metric": y, "tflops": x} for i, (y, x) in enumerate(points)]
    study = optuna.create_study(directions=["maximize", "minimize"])
    for y, x in points:
        study.add_trial(optuna.trial.create_trial(values=[y, x], params={}, distributions={}))
    expected = sorted(t.number for t in study.best_trials)
    assert sorted(r["trial"] for r in pareto_front(rows)) == expected == [0, 1, 2, 4, 5, 6]


def test_summary_lists_only_the_files_written(tmp_path):
    from rediprune.sweep.summary import summary_text

    (tmp_path / "results.csv").write_text("")
    (tmp_path / "results.jsonl").write_text("")
    stats = {"name": "s", "folder": str(tmp_path), "trials": 1, "ran": 0, "skipped": 0, "failed": 1,
             "wall_seconds": 1.0, "model_loads": 1, "workers": 1, "cache_hits": 0, "cache_misses": 0,
             "cache_disk_hits": 0, "cache_dir": "c", "objective": "primary_metric", "cost": "tflops", "best": None,
             "front": [], "ok_rows": 0, "failures": [], "wandb": None}
    text = summary_text(stats)
    assert "pareto.png" not in text and "(csv, jsonl)" in text and "model loads: 1" in text


# ---------------------------------------------------------------------------------- help
def _help(app: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(REPO / f"src/{app}.py"), *args, "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_help_lists_groups_options_and_hyperparameters_where_they_apply():
    sweep = _help("sweep")
    for text in ("usage: python src/sweep.py -m", "pruner    cdpruner, divprune, none, random, rediprune*",
                 "search    grid*, pareto", "launch.num_workers = 2", "ratio  default 0.15   a number in (0, 1]",
                 "alpha  default 0.5    a finite number ≥ 0", "M      default null   null or an integer ≥ 1",
                 "beta   default 3.0    a finite number ≥ 1", "(pruner rediprune)",
                 "query.max_tokens = 128    # at most this many prompt tokens"):
        assert text in sweep, text
    assert not re.search(r"\bschema\b", sweep)
    evaluate = _help("evaluate", "pruner=divprune")
    assert "usage: python src/evaluate.py" in evaluate and "pruner    cdpruner, divprune*" in evaluate
    assert "search" not in evaluate and "launch" not in evaluate and "wandb" not in evaluate  # sweep-only
    assert "ratio  default" in evaluate and "alpha  default" not in evaluate  # DivPrune reads only ratio


def test_summary_warns_when_no_row_has_the_objective(tmp_path):
    from rediprune.sweep.summary import summary_text

    stats = {"name": "s", "folder": str(tmp_path), "trials": 1, "ran": 1, "skipped": 0, "failed": 0,
             "wall_seconds": 1.0, "model_loads": 1, "workers": 1, "cache_hits": 0, "cache_misses": 0,
             "cache_disk_hits": 0, "cache_dir": "c", "objective": "metric/nope", "cost": "tflops", "best": None,
             "front": [], "ok_rows": 1, "failures": [], "wandb": None}
    assert "warning: no best trial: search.objective='metric/nope'" in summary_text(stats)


def test_pinned_sweep_command_lines_are_checked_too(tmp_path):
    cmd = [sys.executable, str(REPO / "src/sweep.py"), "-m", "--config-dir", "sweeps", "--config-name=main_grid",
           "pruner=divprun", f"hydra.sweep.dir={tmp_path / 's'}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.strip() == (
        "error: pruner='divprun' is not allowed; expected one of cdpruner, divprune, none, random, rediprune "
        "(did you mean 'divprune'?)")
    cmd[5] = "--config-name=nope"
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "--config-name='nope' is not allowed" in proc.stderr
