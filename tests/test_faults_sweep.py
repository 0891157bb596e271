"""Faults injected into whole sweeps: secrets, a shared study on PostgreSQL and SQLite, driver kills and Ctrl-C.

Every test runs the real thing: ``src/sweep.py`` in a subprocess, Ray, Optuna on a real database server
(PostgreSQL from Debian's package, started here on 127.0.0.1; skipped with the reason where it is not
installed), W&B offline. The sweeps pin the tiny random backbone so they stay quick whatever the default is.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from rediprune.reports.results import read_rows
from rediprune.sweep.naming import wandb_id
from servers import postgres_server, ray_head
from wandb_records import record_types

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
PINNED = ["backbone=tiny_llava", "dataset=tiny_image", "measure.timing_samples=0", "measure.flops_samples=0"]
PARETO = ["search=pareto", "search.population_size=2", "launch.num_workers=1", "wandb=disabled"]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def head(root):
    with ray_head(root) as started:
        yield started


def _env(home: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "PG"))}
    if home is not None:
        env["HOME"] = str(home)
    env.update(extra)
    return env


def _cmd(root: Path, sweep_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "src/sweep.py", "-m", *PINNED, *args, f"hydra.sweep.dir={sweep_dir}",
            f"cache_dir={root / 'cache'}", f"hf_home={root / 'hf_home'}"]


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, log: Path, timeout: float = 600) -> str:
    proc.wait(timeout=timeout)
    out = log.read_text()
    assert proc.returncode == 0, out[-4000:]
    return out


def _wait_for_rows(results: Path, count: int, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and (not results.exists() or len(results.read_bytes().splitlines()) < count):
        assert proc.poll() is None, "the sweep ended before it was interrupted"
        time.sleep(0.05)


def _files_holding(tree: Path, *needles: str) -> list[Path]:
    found = []
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(needle.encode() in data for needle in needles):
                found.append(path)
    return found


# ---------------------------------------------------------------------------------------------- secrets
def test_secrets_are_never_written(root):
    """A PostgreSQL password (given the documented way, ~/.pgpass) and a W&B key appear in 0 written files;
    a password typed into the command is refused before anything is written."""
    password, api_key = "pw-" + secrets.token_hex(12), secrets.token_hex(20)
    home = root / "secrets_home"
    home.mkdir()
    with postgres_server(password) as pg:
        (home / ".pgpass").write_text(Path(pg["pgpass"]).read_text())
        (home / ".pgpass").chmod(0o600)
        sweep_dir = root / "secret_sweep"
        log = root / "secret_sweep.log"
        cmd = _cmd(root, sweep_dir, "search=pareto", "search.population_size=2", "search.n_trials=2",
                   "launch.num_workers=1", "wandb=offline", f"search.storage={pg['url']}")
        out = _finish(_start(cmd, _env(home, WANDB_API_KEY=api_key), log), log)
        rows = read_rows(sweep_dir / "results.jsonl")
        assert len(rows) == 2 and all(r["status"] == "ok" for r in rows), out[-3000:]
        assert len(list((sweep_dir / "wandb").glob("offline-run-*"))) == 3  # two trial runs, one sweep run
        assert _files_holding(sweep_dir, password, api_key) == []
        assert password not in out and api_key not in out

        # the password typed into the command, escaped as Hydra's grid expansion escapes it, or plain
        user_host = pg["url"].split("://", 1)[1]
        typed = pg["url"].replace(user_host, user_host.replace("@", f":{password}@", 1))
        for kind, value in (("grid", typed.replace(":", "\\:")), ("pareto", typed)):
            refused_dir = root / f"refused_{kind}"
            proc = subprocess.run(_cmd(root, refused_dir, f"search={kind}", "ratio=0.05,0.1",
                                       f"search.storage={value}"),
                                  cwd=REPO, env=_env(home), capture_output=True, text=True, timeout=300)
            assert proc.returncode == 2, proc.stdout + proc.stderr[-3000:]
            assert "search.storage" in proc.stderr and ".pgpass" in proc.stderr
            assert password not in proc.stdout + proc.stderr
            assert not refused_dir.exists() or _files_holding(refused_dir, password) == []
    assert not (REPO / "outputs").exists() or _files_holding(REPO / "outputs", password, api_key) == []


# ---------------------------------------------------------------------------------------------- shared study
def _trials(url: str, pgpass: str | None, study_name: str, hashes: bool = False) -> list[tuple]:
    """(number, state[, config hash]) of every trial of the study, read through Optuna's storage as a third process would."""
    code = ("import json, sys, optuna; s = optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1]); "
            "print(json.dumps([[t.number, t.state.name, t.user_attrs.get('config_hash')] "
            "for t in s.get_trials(deepcopy=False)]))")
    env = _env(PGPASSFILE=pgpass) if pgpass else _env()
    proc = subprocess.run([sys.executable, "-c", code, url, study_name], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [tuple(t if hashes else t[:2]) for t in json.loads(proc.stdout)]


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, root):
    if request.param == "sqlite":
        yield {"url": f"sqlite:///{root / 'shared.db'}", "pgpass": None}
        return
    with postgres_server("pw-" + secrets.token_hex(8)) as pg:
        yield pg


def test_two_drivers_share_one_study(root, head, storage):
    """Two drivers, one study: n trials complete, each evaluated by exactly one driver, none left running."""
    n, study = 4, "shared-" + secrets.token_hex(4)
    env = _env(RAY_AUTH_MODE="token", **({"PGPASSFILE": storage["pgpass"]} if storage["pgpass"] else {}))
    procs = []
    for name in ("a", "b"):
        sweep_dir = root / f"{study}-{name}"
        cmd = _cmd(root, sweep_dir, *PARETO, f"search.n_trials={n}", f"search.storage={storage['url']}",
                   f"search.study_name={study}", f"launch.address={head['address']}")
        log = root / f"{study}-{name}.log"
        procs.append((sweep_dir, log, _start(cmd, env, log)))
    for _, log, proc in procs:
        _finish(proc, log)
    trials = _trials(storage["url"], storage["pgpass"], study, hashes=True)
    states = [state for _, state, _ in trials]
    assert states.count("COMPLETE") == n and "RUNNING" not in states and "FAIL" not in states, trials
    rows = [read_rows(sweep_dir / "results.jsonl") for sweep_dir, _, _ in procs]
    ran = [{r["trial"] for r in driver_rows} for driver_rows in rows]
    assert not ran[0] & ran[1], ran  # no trial evaluated by both drivers
    assert all(ran), ran  # both drivers took part
    # every complete trial was evaluated by one of them (NSGA-II may ask a point again: its result is reused)
    evaluated = {r["hash"] for driver_rows in rows for r in driver_rows}
    assert {h for _, state, h in trials if state == "COMPLETE"} <= evaluated


def test_dead_drivers_trial_is_retried_by_another(root, head):
    """A driver SIGKILLed mid-trial leaves it RUNNING; another driver on the study fails it once its
    heartbeat is stale, asks its parameters again and finishes the study."""
    url, study = f"sqlite:///{root / 'stale.db'}", "stale"
    common = [*PARETO, "search.n_trials=2", f"search.storage={url}", f"search.study_name={study}",
              "search.heartbeat_interval=1", "search.grace_period=3", f"launch.address={head['address']}"]
    env = _env(RAY_AUTH_MODE="token")
    first_dir = root / "stale-a"
    proc = _start(_cmd(root, first_dir, *common), env, root / "stale-a.log")
    deadline = time.time() + 240
    while time.time() < deadline and "RUNNING" not in {s for _, s in _trials_if_any(url, study)}:
        assert proc.poll() is None, (root / "stale-a.log").read_text()[-3000:]
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = _trials(url, None, study)
    assert [s for _, s in left].count("RUNNING") >= 1
    second = _start(_cmd(root, root / "stale-b", *common), env, root / "stale-b.log")
    out = _finish(second, root / "stale-b.log")
    trials = _trials(url, None, study)
    states = [s for _, s in trials]
    assert states.count("COMPLETE") == 2 and "RUNNING" not in states, (trials, out[-3000:])
    with sqlite3.connect(root / "stale.db") as db:
        retried = db.execute("select count(*) from trial_system_attributes where key='failed_trial'").fetchone()[0]
    assert retried >= 1  # RetryFailedTrialCallback asked the dead driver's parameters again


def _trials_if_any(url: str, study: str) -> list[tuple[int, str]]:
    path = Path(url.removeprefix("sqlite:///"))
    if not path.exists():
        return []
    try:
        with sqlite3.connect(path) as db:
            return db.execute("select number, state from trials").fetchall()
    except sqlite3.Error:
        return []


# ---------------------------------------------------------------------------------------------- driver kills
def test_kill_and_rerun_leaves_one_complete_wandb_run_per_trial_and_no_ray_behind(root):
    """SIGKILL the driver (its own local Ray) mid-grid: its Ray processes are gone within seconds; the rerun
    finishes the grid, logs the runs the killed driver lost, and leaves one complete offline run per trial."""
    sweep_dir = root / "wandb_kill"
    cmd = _cmd(root, sweep_dir, "ratio=0.05,0.1,0.15", "alpha=0,1", "launch.num_workers=1", "wandb=offline")
    results = sweep_dir / "results.jsonl"
    proc = _start(cmd, _env(), root / "wandb_kill.log")
    _wait_for_rows(results, 2, proc)
    ray_processes = [p for p in psutil.Process(proc.pid).children(recursive=True)
                     if "wandb" not in p.name()]
    assert any(p.name() == "raylet" for p in ray_processes)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = time.time()
    alive = psutil.wait_procs(ray_processes, timeout=15)[1]
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], [p.name() for p in alive]
    assert time.time() - killed_at < 15

    out = _finish(_start(cmd, _env(), root / "wandb_kill2.log"), root / "wandb_kill2.log")
    rows = read_rows(results)
    assert len(rows) == 6 and len({r["hash"] for r in rows}) == 6
    runs = list((sweep_dir / "wandb").glob("offline-run-*"))
    name = sweep_dir.name
    for row in rows:
        mine = [run for run in runs if run.name.endswith("-" + wandb_id(name, row["hash"]))]
        assert len(mine) == 1, (row["trial"], mine)
        kinds = record_types(next(mine[0].glob("*.wandb")))
        assert {"run", "summary", "exit"} <= set(kinds), (row["trial"], kinds)
    sweep_runs = [run for run in runs if run.name.endswith(wandb_id(name, "", "sweep"))]
    assert len(sweep_runs) == 1 and "exit" in record_types(next(sweep_runs[0].glob("*.wandb")))
    assert len(runs) == 7, sorted(run.name for run in runs)
    logged = (sweep_dir / "wandb.logged.jsonl").read_text().splitlines()
    assert len({json.loads(line)["hash"] for line in logged}) == 6


def test_interrupt_keeps_results_and_says_how_to_resume(root, head):
    """Ctrl-C mid-sweep: exit 130 with one line saying how to resume, no traceback; the rerun skips what
    finished; a trial folder deleted afterwards is run again; results are readable by others (0644)."""
    sweep_dir = root / "interrupt"
    cmd = _cmd(root, sweep_dir, "ratio=0.05,0.1,0.15", "launch.num_workers=1", "wandb=disabled",
               f"launch.address={head['address']}")
    env = _env(RAY_AUTH_MODE="token")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = sweep_dir / "results.jsonl"
    _wait_for_rows(results, 1, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err[-3000:]
    assert "Traceback" not in err and "run the same command again" in err.strip().splitlines()[-1]
    done = read_rows(results)
    assert 1 <= len(done) < 3
    assert results.stat().st_mode & 0o777 == 0o644

    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr[-3000:]
    assert f"{len(done)} skipped" in again.stdout
    rows = read_rows(results)
    assert len(rows) == 3 and len({r["hash"] for r in rows}) == 3

    lost = sweep_dir / str(rows[0]["trial"])
    for path in sorted(lost.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    lost.rmdir()
    third = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stdout + third.stderr[-3000:]
    assert "3 trials — 1 ran, 2 skipped" in third.stdout and "missing; running it again" in third.stderr
    assert (lost / "metrics.json").is_file()
    assert len({r["hash"] for r in read_rows(results)}) == 3


def test_killing_the_driver_during_the_task_check_leaves_no_worker_behind(tmp_path):
    """The task-index check runs in a spawned pool worker (~0.5 GB with lmms-eval imported); a driver
    SIGKILLed while it runs must not leave that worker (or the resource tracker) waiting forever."""
    script = tmp_path / "driver.py"
    script.write_text(
        "from types import SimpleNamespace\n"
        "from rediprune.sweep.preflight import check_task\n"
        "if __name__ == '__main__':\n"
        "    check_task(SimpleNamespace(dataset=SimpleNamespace(task='rediprune_demo_image', include_path='bundled')))\n"
        "    import time; time.sleep(60)\n"
    )
    driver = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path)
    try:
        deadline = time.time() + 60
        children = []
        while time.time() < deadline and not any("spawn_main" in " ".join(p.cmdline()) for p in children):
            time.sleep(0.2)
            children = psutil.Process(driver.pid).children(recursive=True)
        assert children, "the task check started no worker"
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    alive = psutil.wait_procs(children, timeout=30)[1]
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], [p.cmdline()[-1][:60] for p in alive]
