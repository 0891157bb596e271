"""The sweep engine's parts that need no Ray: result store, Pareto set, names, cache, Optuna helpers, reports."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from rediprune.evaluation.cache import TensorCache, namespace
from rediprune.reports.overview import write_overview
from rediprune.reports.pareto import pareto_front
from rediprune.reports.results import read_rows
from rediprune.sweep.config import ParamSpace
from rediprune.sweep.naming import config_hash, sweep_name, wandb_id
from rediprune.sweep.store import ResultStore


# ---------------------------------------------------------------------------------------------- store
def test_store_appends_complete_lines_and_latest_row_wins(tmp_path):
    store = ResultStore(tmp_path)
    store.append({"hash": "a", "status": "failed", "error": "x\ny"})  # newline inside a value stays escaped
    store.append({"hash": "b", "status": "ok", "primary_metric": float("nan")})  # strict JSON: NaN → null
    store.append({"hash": "a", "status": "ok", "primary_metric": 0.5})
    lines = (tmp_path / "results.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 4
    assert all(json.loads(line) for line in lines[:-1])
    again = ResultStore(tmp_path)
    assert [r["hash"] for r in again.latest()] == ["a", "b"]
    assert again.finished("a") and again.get("a")["primary_metric"] == 0.5
    assert again.get("b")["primary_metric"] is None
    assert not ResultStore(tmp_path / "other").finished("a")


def test_store_cuts_a_torn_tail_before_appending(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'{"hash": "a", "status": "ok"}\n{"hash": "b", "sta')
    store = ResultStore(tmp_path)
    assert [r["hash"] for r in store.latest()] == ["a"]
    store.append({"hash": "c", "status": "ok"})
    assert [r["hash"] for r in read_rows(path)] == ["a", "c"]


def test_store_never_holds_a_partial_line_when_the_writer_is_killed(tmp_path):
    """SIGKILL a process appending big rows as fast as it can, many times; every line must parse.

    (With plain O_APPEND writes of these 20 kB rows this test fails: Linux cuts a write short at a page
    boundary when SIGKILL arrives mid-copy.)"""
    writer = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from rediprune.sweep.store import ResultStore
        store = ResultStore(Path({str(tmp_path)!r}))
        i = 0
        while True:
            store.append({{"hash": f"{{os.getpid()}}-{{i}}", "status": "ok", "pad": "x" * 20000}})
            i += 1
        """
    )
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", writer])
        deadline = time.time() + 20
        path = tmp_path / "results.jsonl"
        start = path.stat().st_size if path.exists() else 0
        while time.time() < deadline and (not path.exists() or path.stat().st_size < start + 100_000):
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        data = path.read_bytes()
        assert data.endswith(b"\n"), "a killed writer left a partial line"
        rows = [json.loads(line) for line in data.splitlines()]
        assert all(len(r["pad"]) == 20000 for r in rows)
    store = ResultStore(tmp_path)
    assert len(store) == len(rows)
    store.lock()  # the next driver removes temp files of killed appends
    assert not list(tmp_path.glob(".results-*.tmp"))
    store.unlock()


def test_store_lock_keeps_a_second_driver_out(tmp_path):
    first = ResultStore(tmp_path)
    first.lock()
    code = f"from rediprune.sweep.store import ResultStore; ResultStore(__import__('pathlib').Path({str(tmp_path)!r})).lock()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0 and "another sweep is running" in proc.stderr
    first.unlock()
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---------------------------------------------------------------------------------------------- pareto
def test_pareto_front_is_non_dominated_sorted_and_without_duplicates():
    rows = [
        {"hash": "a", "primary_metric": 0.5, "tflops": 1.0},
        {"hash": "b", "primary_metric": 0.6, "tflops": 2.0},
        {"hash": "c", "primary_metric": 0.4, "tflops": 2.0},  # dominated by a
        {"hash": "b", "primary_metric": 0.6, "tflops": 2.0},  # same trial twice (NSGA-II repeat)
        {"hash": "d", "primary_metric": 0.6, "tflops": 2.0},  # same point, other config: a tie, kept
        {"hash": "e", "primary_metric": 0.7, "tflops": 3.0},
        {"hash": "f", "primary_metric": 0.9, "tflops": 0.5, "status": "failed"},
        {"hash": "g", "primary_metric": None, "tflops": 0.1},
    ]
    front = pareto_front(rows)
    assert [r["hash"] for r in front] == ["a", "b", "d", "e"]


# ---------------------------------------------------------------------------------------------- names
def test_sweep_name_is_stable_and_ignores_how_trials_run():
    a = sweep_name(None, "grid", ["ratio=0.05,0.1", "alpha=0,1", "launch.num_workers=4", "wandb=offline"])
    b = sweep_name(None, "grid", ["alpha=0,1", "ratio=0.05,0.1"])
    assert a == b and a.startswith("grid-") and len(a) == 13
    assert sweep_name(None, "grid", ["ratio=0.05"]) != a
    assert sweep_name("mine", "grid", ["ratio=0.05"]) == "mine"


def test_config_hash_ignores_paths():
    # a trial's config is the evaluation's only (no search/launch/wandb: rediprune.sweep.config.evaluation_part)
    cfg = {"ratio": 0.1, "alpha": 0.5, "backbone": {"name": "tiny"}, "cache_dir": "/a", "hf_home": "/b"}
    other = {**cfg, "cache_dir": "/c", "hf_home": "/d"}
    assert config_hash(cfg) == config_hash(other)
    assert config_hash(cfg) != config_hash({**cfg, "alpha": 1.0})


def test_wandb_id_is_short_safe_and_stable():
    rid = wandb_id("Grid Sweep: 3f/9a", "ab" * 32)
    assert rid == wandb_id("Grid Sweep: 3f/9a", "ab" * 32)
    assert len(rid) <= 64 and all(c.isalnum() or c in "-_" for c in rid) and rid == rid.lower()


def test_sweep_settings_stay_out_of_a_trial():
    from omegaconf import OmegaConf

    from rediprune.sweep.config import evaluation_part, is_sweep_override
    from rediprune.sweep.driver import public_config, shown_overrides

    url = "postgresql://me@db.example:5432/optuna"
    overrides = ["search=pareto", f"search.storage={url}", "+launch.x=1", "wandb.mode=offline", "ratio=0.1",
                 "searcher=1"]
    assert [o for o in overrides if not is_sweep_override(o)] == ["ratio=0.1", "searcher=1"]
    assert shown_overrides(["hydra.sweep.dir=/x", "ratio=0.1"]) == "ratio=0.1"
    cfg = OmegaConf.create({"ratio": 0.1, "search": {"storage": url}, "launch": {}, "wandb": {},
                            "hydra": {"job": {"num": 0}}})
    public = public_config(cfg)  # the sweep run's config (a URL with a password never gets this far)
    assert "hydra" not in public and public["ratio"] == 0.1 and public["search"]["storage"] == url
    assert set(evaluation_part(cfg)) == {"ratio", "hydra"}  # what a trial runs and saves


# ---------------------------------------------------------------------------------------------- cache
def test_tensor_cache_memory_then_disk(tmp_path):
    folder = tmp_path / namespace(checkpoint="tiny", dtype="float32")
    cache = TensorCache(folder)
    value = torch.arange(12.0).reshape(3, 4)
    cache["tiny|vision_tower|layer=-2|torch.float32|abc"] = value
    assert cache.get("missing") is None and cache.misses == 1
    assert torch.equal(cache["tiny|vision_tower|layer=-2|torch.float32|abc"], value) and cache.hits == 1
    fresh = TensorCache(folder)  # another worker / a later sweep
    assert torch.equal(fresh.get("tiny|vision_tower|layer=-2|torch.float32|abc"), value)
    assert fresh.disk_hits == 1 and not list(folder.rglob(".tmp-*"))
    small = TensorCache(None, max_memory_bytes=100)  # memory bound: least recently used goes first
    small["a"], small["b"] = torch.zeros(20), torch.zeros(20)
    assert "a" not in small and "b" in small


# ---------------------------------------------------------------------------------------------- optuna
def test_param_overrides_and_suggest_cover_the_space(tmp_path):
    import optuna

    from rediprune.sweep.search import param_overrides, suggest

    space = {
        "ratio": ParamSpace(low=0.05, high=0.5, step=0.05),
        "M": ParamSpace(choices=[None, 16]),
        "beta": ParamSpace(low=1.0, high=4.0, log=True),
        "query": ParamSpace(choices=["none", "average"]),
    }
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.NSGAIISampler(seed=0, population_size=4))
    for _ in range(8):
        trial = study.ask()
        params = suggest(trial, space)
        assert 0.05 <= params["ratio"] <= 0.5 and params["M"] in (None, 16) and 1 <= params["beta"] <= 4
        overrides = param_overrides(params)
        assert any(o.startswith("query=") for o in overrides)
        ratio = [o for o in overrides if o.startswith("ratio=")][0]
        assert len(ratio) <= len("ratio=0.45"), ratio  # no 0.15000000000000002
        study.tell(trial, [0.5, 1.0])
    assert param_overrides({"M": None}) == ["M=null"]


# ---------------------------------------------------------------------------------------------- reports
def test_reports_from_rows(tmp_path):
    rows = [
        {"trial": 0, "hash": "a", "status": "ok", "ratio": 0.1, "alpha": 0.5, "primary_metric": 0.5, "tflops": 1.0},
        {"trial": 1, "hash": "b", "status": "ok", "ratio": 0.2, "alpha": 0.5, "primary_metric": 0.7, "tflops": 2.0},
        {"trial": 2, "hash": "c", "status": "failed", "ratio": 0.3, "alpha": 0.5, "error": "boom"},
    ]
    front = pareto_front(rows)
    paths = write_overview(rows, front, tmp_path, objective="primary_metric", cost="tflops", title="t")
    csv_lines = paths["csv"].read_text().splitlines()
    assert csv_lines[0].startswith("trial,status,ratio,alpha,") and len(csv_lines) == 4
    md = paths["md"].read_text()
    assert md.count("| ★ |") == 2 and "| failed |" in md
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "plotly" in paths["html"].read_text()[:200000]
    assert [r["hash"] for r in json.loads(paths["pareto"].read_text())] == ["a", "b"]


# ---------------------------------------------------------------------------------------------- cluster file
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning",
                            "ignore:Heartbeat of storage is supposed to be used with Study.optimize")
def test_a_trial_whose_driver_died_while_asking_is_asked_again(tmp_path):
    """A driver killed between ``study.ask`` and its first heartbeat leaves a RUNNING trial with no heartbeat
    and no job folder: Optuna's stale-trial check never fails it, so a rerun waited for ever. It is failed
    and asked again once it is older than twice the grace period; younger, it may be a live driver's."""
    from optuna.trial import TrialState

    from rediprune.sweep.study import SharedStudy

    url = f"sqlite:///{tmp_path}/optuna.db"
    opened = dict(heartbeat_interval=1, grace_period=2, max_retry=3, own_dir=tmp_path / "sweep")
    dead = SharedStudy.open(url, "s", None, **opened)
    orphan = dead.study.ask()  # ... and the driver is killed before it records a heartbeat
    orphan.suggest_float("ratio", 0.05, 0.3)
    rerun = SharedStudy.open(url, "s", None, **opened)
    assert rerun.reap() == 0 and rerun.running_elsewhere() == 1  # could still be a live driver's
    time.sleep(4.5)
    assert rerun.reap() == 1 and rerun.running_elsewhere() == 0
    states = [t.state for t in rerun.study.get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.WAITING]  # failed, and its parameters queued again
    again = rerun.ask(n_trials=4)
    assert again.params == {"ratio": orphan.params["ratio"]}
    rerun.tell(again, [0.5, 1.0])
    dead.tell(orphan, [0.1, 1.0])  # the first driver, had it lived, finds its trial failed: no crash
    assert rerun.counts().complete == 1


def test_ray_cluster_yaml_is_a_valid_cluster_launcher_config():
    import jsonschema
    import ray.autoscaler
    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    repo = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((repo / "ray_cluster.yaml").read_text())
    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(cfg, schema)
    validate_config(prepare_config(cfg))
    workers = cfg["available_node_types"]["a100"]
    assert workers["node_config"]["InstanceType"].startswith("p4d") and workers["max_workers"] >= 1
    setup = " ".join(cfg["worker_setup_commands"])
    assert setup.index("torch==") < setup.index("pip install -e")  # torch first, then the project


# ---------------------------------------------------------------------------------------------- W&B mode
FAKE_KEY = "0123456789abcdef" * 2 + "feedbeef"  # 40 characters, the shape of a W&B API key


def _wandb_probe(tmp_path, code: str, key: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env["HOME"] = str(tmp_path / "home")  # no ~/.netrc, no W&B settings of the machine
    if key:
        env["WANDB_API_KEY"] = key
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=120)


def test_wandb_auto_mode_follows_the_configured_key_and_never_prompts(tmp_path):
    code = """
        from rediprune.sweep.tracking import TrackingError, resolve_mode
        print(resolve_mode("auto"), resolve_mode("offline"), resolve_mode("disabled"))
        try:
            print(resolve_mode("online"))
        except TrackingError as exc:
            print("error:", exc)
    """
    without = _wandb_probe(tmp_path, code, None)
    assert without.stdout.splitlines()[0] == "offline offline disabled", without.stderr
    assert "error: wandb.mode='online' is not allowed without an API key" in without.stdout
    with_key = _wandb_probe(tmp_path, code, FAKE_KEY)
    assert with_key.stdout.splitlines() == ["online offline disabled", "online"], with_key.stderr
    assert FAKE_KEY not in with_key.stdout + with_key.stderr


def test_wandb_online_failure_falls_back_offline_and_never_writes_the_key(tmp_path):
    """auto + a key the server cannot accept here (no network or a wrong key): offline runs, no crash, no key."""
    folder = tmp_path / "sweep"
    code = f"""
        from pathlib import Path
        from types import SimpleNamespace
        from rediprune.sweep.tracking import Tracker
        cfg = SimpleNamespace(mode="auto", project="p", entity=None, tags=[], init_timeout=3.0)
        tracker = Tracker(cfg, sweep="unit", folder=Path({str(folder)!r}))
        tracker.trial({{"hash": "ab" * 32, "trial": 0, "status": "ok", "primary_metric": 0.5, "tflops": 1.0}},
                      {{"ratio": 0.1}})
        rows = [{{"hash": "ab" * 32, "trial": 0, "primary_metric": 0.5, "tflops": 1.0}}]
        tracker.sweep(rows, rows, objective="primary_metric", cost="tflops", config={{}}, summary={{}})
        print(tracker.mode, tracker.logged)
    """
    proc = _wandb_probe(tmp_path, code, FAKE_KEY)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["offline", "1"], proc.stdout + proc.stderr
    assert FAKE_KEY not in proc.stdout + proc.stderr
    for path in folder.rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), path
    assert list(folder.glob("wandb/offline-run-*/files/media/table/trials_*.table.json"))


# ---------------------------------------------------------------------------------------------- dispatch / search
def test_pool_prefers_trials_for_the_backbone_a_worker_holds():
    from collections import deque

    from rediprune.sweep.dispatch import Job, WorkerPool

    jobs = deque(Job(num=i, overrides=[], config=None, hash=str(i), key=k) for i, k in enumerate("aabba"))
    assert WorkerPool.pick(jobs, "b").num == 2
    assert WorkerPool.pick(jobs, None).num == 0
    assert WorkerPool.pick(jobs, "c").num == 1  # nothing for c: the oldest
    assert [j.num for j in jobs] == [3, 4]


def test_command_line_values_narrow_the_search_space():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from rediprune.sweep.config import register_sweep_configs
    from rediprune.sweep.search import narrow_space

    register_sweep_configs()
    repo = Path(__file__).resolve().parents[1]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(repo / "conf"), version_base="1.3"):
        cfg = compose(config_name="sweep", overrides=["search=pareto"])
        loader = GlobalHydra.instance().config_loader()
        space, base = narrow_space(dict(cfg.search.space), ["search=pareto", "query=average,exponential",
                                                            "alpha=interval(0.1,0.9)", "tau=0.2", "M=null,64"],
                                   loader)
    GlobalHydra.instance().clear()
    assert space["query"].choices == ["average", "exponential"]
    assert (space["alpha"].low, space["alpha"].high) == (0.1, 0.9)
    assert space["M"].choices == [None, 64]
    assert "tau" not in space and base == ["search=pareto", "tau=0.2"]
    assert set(space) == {"ratio", "alpha", "M", "beta", "query"}


# ---------------------------------------------------------------------------------------------- configs
def test_sweep_folder_resolver_and_pinned_sweeps():
    from omegaconf import OmegaConf

    import hydra_plugins.rediprune_sweep.config  # noqa: F401 - registers ${rediprune_sweep_name:...}

    cfg = OmegaConf.create({
        "search": {"name": None, "kind": "grid"},
        "task": ["ratio=0.05,0.1", "alpha=0,1", "launch.num_workers=4"],
        "dir": "outputs/sweeps/${rediprune_sweep_name:${search.name},${search.kind},${task}}",
    })
    assert cfg.dir == f"outputs/sweeps/{sweep_name(None, 'grid', ['alpha=0,1', 'ratio=0.05,0.1'])}"
    cfg.search.name = "mine"
    assert cfg.dir == "outputs/sweeps/mine"

    repo = Path(__file__).resolve().parents[1]
    shown = subprocess.run([sys.executable, "src/sweep.py", "--config-dir", "sweeps", "--config-name", "main_grid",
                            "--cfg", "all"], cwd=repo, capture_output=True, text=True, timeout=120)
    pinned = OmegaConf.create(shown.stdout)
    assert dict(pinned.hydra.sweeper.params) == {"ratio": "0.05,0.1,0.15", "alpha": "0,0.5,1"}, shown.stderr
    assert pinned.search.name == "main_grid" and pinned.hydra.sweeper._target_.endswith("RediPruneSweeper")
