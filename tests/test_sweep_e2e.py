"""End-to-end sweeps: real Hydra, Ray, lmms-eval, transformers, SQLite and W&B (offline) on the embedded tiny default.

One Ray head (``ray start --head --block`` on 127.0.0.1, dashboard on for job submission) serves every
test here except the main grid command, which starts its own local Ray exactly as a user's run does.
Sweeps joining the head by address set ``RAY_AUTH_MODE=token`` in their environment: Ray 2.60 heads use
token authentication and Ray only sends the token for an explicit address when that variable says so.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from conftest import pin_tiny

from rediprune.reports.results import read_rows
from rediprune.sweep.naming import wandb_id
from servers import free_port, ray_head

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
QUICK = ["measure.timing_samples=0", "measure.flops_samples=0"]  # real evaluation, no latency/FLOP passes


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweeps")
    return {"root": root, "cache": root / "cache", "hf_home": root / "hf_home"}


@pytest.fixture(scope="module")
def head(paths):
    """A Ray head on 127.0.0.1 for this module, stopped (its own process group only) afterwards."""
    with ray_head(paths["root"]) as started:
        yield started


def _cmd(paths, sweep_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "src/sweep.py", "-m", *pin_tiny(args), f"hydra.sweep.dir={sweep_dir}",
            f"cache_dir={paths['cache']}", f"hf_home={paths['hf_home']}"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(extra)
    return env


def _run(cmd: list[str], env=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=REPO, env=env or _env(), capture_output=True, text=True, timeout=timeout)


def _on_head(head) -> list[str]:
    return [f"launch.address={head['address']}"]


def _rows(sweep_dir: Path) -> list[dict]:
    return read_rows(sweep_dir / "results.jsonl")


def _kill_driver_after_two_results(cmd: list[str], env: dict[str, str], results: Path) -> None:
    """Start a sweep and SIGKILL its driver once two trials are stored (mid-sweep, no clean-up)."""
    driver = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while time.time() < deadline and (not results.exists() or len(results.read_bytes().splitlines()) < 2):
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.wait()


# ---------------------------------------------------------------------------------------------- grid
def test_main_grid_command_nine_trials(paths):
    """The README's main job on a local Ray: 9 trials, 2 resident workers, reports, W&B offline, resume."""
    sweep_dir = paths["root"] / "grid"
    cmd = _cmd(paths, sweep_dir, "ratio=0.05,0.1,0.15", "alpha=0,0.5,1")  # wandb=auto, the default
    home = paths["root"] / "home"  # no ~/.netrc: auto must pick offline, without a prompt
    home.mkdir()
    proc = _run(cmd, env=_env(HOME=str(home)))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-4000:]
    rows = _rows(sweep_dir)
    assert len(rows) == 9 and len({r["hash"] for r in rows}) == 9 and all(r["status"] == "ok" for r in rows)
    assert {(r["ratio"], r["alpha"]) for r in rows} == {(r, a) for r in (0.05, 0.1, 0.15) for a in (0.0, 0.5, 1.0)}
    for row in rows:
        job = sweep_dir / str(row["trial"])
        for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "config.yaml", "metrics.json", "sweep.log",
                     "samples.jsonl"):
            assert (job / name).is_file(), job / name
        assert not (job / "traceback.txt").exists()
        for name in ("config.yaml", ".hydra/config.yaml"):  # a trial holds its evaluation's config only
            saved = OmegaConf.load(job / name)
            assert not {"search", "launch", "wandb"} & set(saved) and saved.ratio == row["ratio"], job / name
        assert json.loads((job / "metrics.json").read_text())["primary_metric"] == row["primary_metric"]
        assert "tflops" in row and row["tflops"] > 0
    # resident workers: one model load per worker, later trials hit the feature cache
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert summary["model_loads"] == summary["workers"] == 2 and summary["ran"] == 9 and summary["failed"] == 0
    assert summary["cache_hits"] > 0
    assert sum(r["model_loads"] for r in rows) == 2
    assert "9 trials — 9 ran, 0 skipped" in proc.stdout and "model loads: 2 on 2 workers" in proc.stdout
    assert "Pareto front" in proc.stdout and "9/9" in proc.stderr  # summary and progress bar
    # reports
    assert len((sweep_dir / "results.csv").read_text().splitlines()) == 10
    assert (sweep_dir / "results.md").read_text().count("| ok |") == 9
    assert (sweep_dir / "pareto.png").stat().st_size > 1000 and (sweep_dir / "pareto.html").stat().st_size > 1000
    front = json.loads((sweep_dir / "pareto.json").read_text())
    assert front and len({r["hash"] for r in front}) == len(front)
    # W&B offline, under the sweep folder: one run per trial (id from sweep + config hash) and the sweep run
    runs = sorted(p.name for p in (sweep_dir / "wandb").glob("offline-run-*"))
    name = sweep_dir.name
    for row in rows:
        assert sum(r.endswith("-" + wandb_id(name, row["hash"])) for r in runs) == 1
    sweep_run = [p for p in (sweep_dir / "wandb").glob("offline-run-*") if p.name.endswith(wandb_id(name, "", "sweep"))]
    assert len(sweep_run) == 1
    tables = {p.name.split("_")[0]: json.loads(p.read_text()) for p in sweep_run[0].glob("files/media/table/*.table.json")}
    assert len(tables["trials"]["data"]) == 9 and "primary_metric" in tables["trials"]["columns"]
    assert len(tables["pareto"]["data"]) == len(front)
    assert not (REPO / "wandb").exists()
    assert "W&B: offline" in proc.stdout
    # rerunning the same command skips every finished trial (and needs no Ray at all)
    again = _run(cmd, env=_env(HOME=str(home)))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "9 trials — 0 ran, 9 skipped" in again.stdout
    assert len(_rows(sweep_dir)) == 9


def test_failing_trial_is_recorded_with_traceback_and_the_sweep_goes_on(paths, head):
    broken = paths["root"] / "broken_tasks"
    shutil.copytree(REPO / "src/rediprune/evaluation/tasks/tiny_image", broken / "tiny_image")
    (broken / "tiny_image" / "tiny_image.jsonl").write_text("this is not json\n")  # the dataset fails to load
    sweep_dir = paths["root"] / "failing"
    proc = _run(_cmd(paths, sweep_dir, f"dataset.include_path=bundled,{broken}", "wandb=disabled",
                     *QUICK, *_on_head(head)), env=_env(RAY_AUTH_MODE="token"))
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    rows = {r["trial"]: r for r in _rows(sweep_dir)}
    assert rows[0]["status"] == "ok" and rows[1]["status"] == "failed" and rows[1]["error"]
    trace = (sweep_dir / "1" / "traceback.txt").read_text()
    assert "Traceback" in trace and "run_evaluation" in trace
    assert "DatasetGenerationError" in rows[1]["error"]  # the root cause, not only lmms-eval's RetryError
    assert "1 failed" in proc.stdout and "FAILED trial 1" in proc.stdout


# ---------------------------------------------------------------------------------------------- reliability
def test_worker_killed_mid_trial_is_retried_and_recorded_once(paths, head):
    sweep_dir = paths["root"] / "worker_kill"
    cmd = _cmd(paths, sweep_dir, "ratio=0.05,0.1,0.15", "launch.num_workers=1", "wandb=offline", *QUICK,
               *_on_head(head))
    driver = subprocess.Popen(cmd, cwd=REPO, env=_env(RAY_AUTH_MODE="token"), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    attempts = sweep_dir / "0" / "attempts.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (attempts.exists() and attempts.read_text().endswith("\n")):
        time.sleep(0.05)
    victim = json.loads(attempts.read_text().splitlines()[0])["pid"]
    os.kill(victim, signal.SIGKILL)  # the worker process, in the middle of trial 0 (it is loading the model)
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, out + err[-3000:]
    rows = _rows(sweep_dir)
    assert len(rows) == 3 and len({r["hash"] for r in rows}) == 3 and all(r["status"] == "ok" for r in rows)
    starts = [json.loads(line) for line in attempts.read_text().splitlines()]
    assert len(starts) == 2 and starts[0]["pid"] == victim and starts[1]["pid"] != victim
    assert {r["trial"]: r for r in rows}[0]["attempt"] == 2
    trial_runs = [p for p in (sweep_dir / "wandb").glob("offline-run-*") if not p.name.endswith("-sweep")]
    assert len(trial_runs) == 3  # the retried trial has one W&B run


def test_driver_killed_then_same_command_resumes_without_repeating(paths, head):
    sweep_dir = paths["root"] / "driver_kill"
    cmd = _cmd(paths, sweep_dir, "ratio=0.05,0.1,0.15", "alpha=0,1", "wandb=disabled", *QUICK, *_on_head(head))
    env = _env(RAY_AUTH_MODE="token")
    results = sweep_dir / "results.jsonl"
    _kill_driver_after_two_results(cmd, env, results)
    before = results.read_bytes()
    assert before.endswith(b"\n")
    done = [json.loads(line) for line in before.splitlines()]
    assert 2 <= len(done) < 6, "the driver should die mid-sweep"
    proc = _run(cmd, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    after = results.read_bytes()
    assert after.startswith(before)  # finished trials untouched
    rows = [json.loads(line) for line in after.splitlines()]
    assert len(rows) == 6 and len({r["hash"] for r in rows}) == 6  # every trial exactly once
    assert f"{len(done)} skipped" in proc.stdout
    for row in done:  # a finished trial's folder saw one start only
        assert len((sweep_dir / str(row["trial"]) / "attempts.jsonl").read_text().splitlines()) == 1


# ---------------------------------------------------------------------------------------------- optuna
def _study(sweep_dir: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(sweep_dir / "optuna.db") as db:
        return db.execute("select number, state from trials order by number").fetchall()


def test_pareto_search_resumes_numbering_and_serves_the_dashboard(paths, head):
    """Driver killed mid-search → the same command finishes the study; a larger n_trials continues numbering."""
    sweep_dir = paths["root"] / "pareto"
    base = ["search=pareto", "search.population_size=2", "wandb=disabled", *QUICK, *_on_head(head)]
    env = _env(RAY_AUTH_MODE="token")
    _kill_driver_after_two_results(_cmd(paths, sweep_dir, *base, "search.n_trials=4"), env,
                                   sweep_dir / "results.jsonl")
    assert "RUNNING" in {state for _, state in _study(sweep_dir)}  # trials the killed driver left behind
    first = _run(_cmd(paths, sweep_dir, *base, "search.n_trials=4"), env=env)
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    study = _study(sweep_dir)
    assert [n for n, _ in study] == list(range(len(study)))
    assert sum(state == "COMPLETE" for _, state in study) == 4 and "RUNNING" not in {s for _, s in study}
    with sqlite3.connect(sweep_dir / "optuna.db") as db:  # RetryFailedTrialCallback marks each retry
        retries = db.execute("select count(*) from trial_system_attributes where key='failed_trial'").fetchone()[0]
    assert retries == sum(state == "FAIL" for _, state in study) >= 1  # asked again, not lost
    assert "stale (a driver died; asked again)" in first.stdout
    second = _run(_cmd(paths, sweep_dir, *base, "search.n_trials=6"), env=env)
    assert second.returncode == 0, second.stdout + second.stderr[-3000:]
    more = _study(sweep_dir)
    assert more[: len(study)] == study and [n for n, _ in more] == list(range(len(study) + 2))  # numbering continues
    assert sum(state == "COMPLETE" for _, state in more) == 6
    front = json.loads((sweep_dir / "pareto.json").read_text())
    assert front and len({r["hash"] for r in front}) == len(front)
    rows = _rows(sweep_dir)
    assert len({r["hash"] for r in rows if r["status"] == "ok"}) == len([r for r in rows if r["status"] == "ok"])
    # optuna-dashboard serves the storage (README line)
    port = free_port()
    dash = subprocess.Popen(["optuna-dashboard", f"sqlite:///{sweep_dir / 'optuna.db'}", "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, page = time.time() + 30, None
        while time.time() < deadline and page is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=1).read()
            except Exception:
                time.sleep(0.2)
        assert page is not None and sweep_dir.name.encode() in page
    finally:
        dash.terminate()
        dash.wait(timeout=10)


def test_pareto_failed_trials_are_fail_and_the_search_goes_on(paths, head):
    sweep_dir = paths["root"] / "pareto_fail"  # a checkpoint that does not exist: every trial fails to load
    proc = _run(_cmd(paths, sweep_dir, "search=pareto", "search.n_trials=2", "launch.num_workers=1",
                     "backbone.checkpoint=/nonexistent/model", "wandb=disabled", *QUICK, *_on_head(head)),
                env=_env(RAY_AUTH_MODE="token"))
    assert proc.returncode == 1, proc.stdout + proc.stderr[-3000:]
    assert _study(sweep_dir) == [(0, "FAIL"), (1, "FAIL")]  # both recorded, the search did not stop at one
    assert all("/nonexistent/model" in (sweep_dir / str(n) / "traceback.txt").read_text() for n in (0, 1))
    with sqlite3.connect(sweep_dir / "optuna.db") as db:
        errors = [v for (v,) in db.execute("select value_json from trial_user_attributes where key='error'")]
    assert len(errors) == 2 and all("OSError" in e for e in errors)


# ---------------------------------------------------------------------------------------------- cluster
def test_ray_job_submit_runs_the_sweep_on_the_cluster(paths, head):
    """`ray job submit -- python src/sweep.py -m …`: the entrypoint joins the job's cluster (RAY_ADDRESS)."""
    work = paths["root"] / "job_working_dir"  # what --working-dir uploads: configs, pinned sweeps, entry point
    shutil.copytree(REPO / "conf", work / "conf")
    shutil.copytree(REPO / "sweeps", work / "sweeps")
    (work / "src").mkdir()
    shutil.copy(REPO / "src" / "sweep.py", work / "src" / "sweep.py")
    sweep_dir = paths["root"] / "job"
    entry = _cmd(paths, sweep_dir, "--config-dir", "sweeps", "--config-name", "tiny_smoke",  # 2 trials
                 "wandb=disabled", "launch.progress=false")
    entry[0] = "python"
    proc = subprocess.run(
        ["ray", "job", "submit", "--address", head["dashboard"], "--working-dir", str(work), "--", *entry],
        cwd=work, env=_env(RAY_AUTH_MODE="token"), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "succeeded" in proc.stdout + proc.stderr
    rows = _rows(sweep_dir)
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    assert {r["ratio"] for r in rows} == {0.05, 0.1}
