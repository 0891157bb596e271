"""The driver side of one sweep: check configs, skip finished trials, dispatch, record, report.

Usage (the Hydra sweeper in ``src/hydra_plugins/rediprune_sweep`` does this)::

    driver = SweepDriver(hydra_context, task_function, master_config)   # checks search/launch/wandb
    with driver.stopping_on_error():        # an exception stops the workers and flushes W&B
        jobs = [driver.prepare(overrides, num) for num, overrides in enumerate(batch)]   # all checked first
        returns = driver.run_jobs(jobs)     # Hydra JobReturns, in job order
    exit_code = driver.finish()             # reports, W&B sweep run, summary; 1 if a trial failed

Data flows one way: job overrides → composed, checked config (``prepare``; a bad value exits with
status 2 before Ray starts or a model loads) → skipped if its config hash already finished in this
sweep folder → a resident worker (``dispatch``) → outcome → ``results.jsonl`` (``store``) → W&B
(``tracking``) → reports (``report``, ``plots``) at the end. Only this process writes the store.
"""
from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from rediprune.config import load
from rediprune.config.command_line import CONFIG_ERROR_EXIT
from rediprune.config.command_line import fail as config_error  # one line, exit 2: nothing ran
from rediprune.evaluation import identity
from rediprune.reports.render import write_text
from rediprune.sweep.config import evaluation_part, is_sweep_override, load_sweep
from rediprune.sweep.dispatch import Job, RaySession, WorkerPool, WorkersUnavailable
from rediprune.sweep.naming import config_hash
from rediprune.sweep.preflight import check_sweep, check_task
from rediprune.sweep.store import ResultStore
from rediprune.sweep.workers import COUNTERS, adapter_key, resident_settings

log = logging.getLogger(__name__)

TRIAL_FAILED_EXIT = 1
INTERRUPTED_EXIT = 130  # the shell's convention for a run stopped by SIGINT


class TrialFailed(RuntimeError):
    """The return value Hydra sees for a failed trial (details in its folder's traceback.txt)."""


def shown_overrides(overrides: Sequence[str]) -> str:
    """A trial's overrides as messages and result rows show them (no ``hydra.*``)."""
    return " ".join(o for o in overrides if not o.startswith("hydra."))


def _first_lines(exc: BaseException) -> str:
    """An exception's message without OmegaConf's object dump; keeps 'full_key' for context."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    keep = [ln for ln in lines if not ln.startswith(("object_type", "reference_type"))]
    text = "; ".join(keep[:3]) if keep else type(exc).__name__
    cause = exc.__cause__
    if cause is not None and str(cause).splitlines() and str(cause).splitlines()[0] not in text:
        text += f" ({str(cause).splitlines()[0]})"
    return text


def task_part(config: DictConfig) -> DictConfig:
    """The job config without its ``hydra`` node (what the task function receives)."""
    task = OmegaConf.create(OmegaConf.to_container(config, resolve=False))
    with open_dict(task):
        task.pop("hydra", None)
    return task


def public_config(config: DictConfig) -> dict[str, Any]:
    """The resolved config without ``hydra``, as W&B receives it. It holds no password: a URL with one
    is refused before anything runs (``rediprune.config.secrets.RefuseSecrets``)."""
    container = OmegaConf.to_container(task_part(config), resolve=True)
    assert isinstance(container, dict)
    return container


def check(task_cfg: DictConfig, where: str, loader: Any) -> Any:
    """``loader`` (``load`` / ``load_sweep``) with the failure turned into a one-line config error."""
    try:
        return loader(task_cfg)
    except Exception as exc:  # noqa: BLE001 - ValueError from __post_init__, ValidationError from OmegaConf
        config_error(f"{where}: {_first_lines(exc)}")


class SweepDriver:
    """Everything one sweep invocation does in the driver process."""

    def __init__(self, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        self.hydra_context = hydra_context
        self.task_function = task_function
        self.master = config
        self.started = time.perf_counter()
        self.run = check(task_part(config), "config", load_sweep)  # search/launch/wandb before anything starts
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).expanduser().resolve()
        self.name = self.sweep_dir.name
        try:  # what only this machine can tell: folder, storage driver, CPUs, Ray address
            check_sweep(self.run, self.sweep_dir)
        except ValueError as exc:
            config_error(str(exc))
        self.objective = self.run.search.objective
        self.cost = self.run.search.cost
        self.store: ResultStore | None = None
        self.tracker: Any = None
        self.ray: RaySession | None = None
        self.pool: WorkerPool | None = None
        self.progress: Any = None
        self.ran: list[dict[str, Any]] = []  # rows recorded by this invocation
        self.skipped: list[dict[str, Any]] = []
        self.seen: set[str] = set()  # hashes of this invocation's trials
        self.n_workers = 0
        self.relogged = 0  # W&B runs of earlier finished trials logged again (their driver was killed)

    # ------------------------------------------------------------------ setup
    def open(self) -> None:
        """Sweep folder, result store and W&B mode (an impossible W&B setting fails here, before Ray)."""
        if self.store is not None:
            return
        from rediprune.sweep.tracking import Tracker, TrackingError

        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        self.store = ResultStore(self.sweep_dir)
        try:
            self.store.lock()
        except RuntimeError as exc:
            config_error(str(exc))
        OmegaConf.save(self.master, self.sweep_dir / "multirun.yaml")
        try:
            self.tracker = Tracker(self.run.wandb, sweep=self.name, folder=self.sweep_dir)
        except TrackingError as exc:
            config_error(str(exc))

    def gpus_per_worker(self) -> float:
        launch = self.run.launch
        if launch.gpus_per_worker is not None:
            return float(launch.gpus_per_worker)
        return 1.0 if str(self.run.backbone.device).startswith("cuda") else 0.0

    def workers(self) -> WorkerPool:
        """Start (or join) Ray and the resident workers, once."""
        if self.pool is None:
            from tqdm import tqdm

            launch = self.run.launch
            with tqdm.external_write_mode(file=sys.stderr):  # Ray's start-up notices above the bar, not inside it
                self.ray = RaySession.open(launch)
            gpus = self.gpus_per_worker()
            self.pool = WorkerPool(
                launch,
                gpus_per_worker=gpus,
                task_function=self.task_function,
                callbacks=getattr(self.hydra_context, "callbacks", None),
                num_workers=self.ray.fitting_workers(launch.num_workers, launch.cpus_per_worker, gpus),
                settings=resident_settings(self.run),
            )
            self.n_workers = len(self.pool.slots)
        return self.pool

    def start_progress(self, total: int) -> None:
        from tqdm import tqdm

        self.progress = tqdm(total=total, desc=self.name, unit="trial", file=sys.stderr, dynamic_ncols=True,
                             disable=not self.run.launch.progress)

    def _tick(self) -> None:
        if self.progress is not None:
            failed = sum(r["status"] != "ok" for r in self.ran)
            self.progress.set_postfix(ok=len(self.ran) - failed, failed=failed, skipped=len(self.skipped),
                                      refresh=False)
            self.progress.update(1)

    # ------------------------------------------------------------------ jobs
    def prepare(self, overrides: Sequence[str], num: int) -> Job:
        """Compose and check job ``num``; exits with status 2 on a bad value (nothing has run yet)."""
        # A trial gets the evaluation's overrides only: the sweep's keys (search, launch, wandb) are the
        # driver's, already in the master config, and stay out of the trial's config and records.
        overrides = [o for o in overrides if not is_sweep_override(o)]
        where = f"trial {num} ({shown_overrides(overrides)})"
        try:
            job_cfg = self.hydra_context.config_loader.load_sweep_config(self.master, list(overrides))
        except Exception as exc:  # noqa: BLE001 - Hydra composition / OmegaConf validation
            config_error(f"{where}: {_first_lines(exc)}")
        with read_write(job_cfg), open_dict(job_cfg):
            job_cfg.hydra.job.id = num
            job_cfg.hydra.job.num = num
            # Absolute paths: a worker may start in another folder (Ray, job submission, other nodes).
            job_cfg.hydra.sweep.dir = str(self.sweep_dir)
            for key in ("cache_dir", "hf_home"):
                if key in job_cfg and job_cfg[key] is not None:
                    job_cfg[key] = str(Path(str(job_cfg[key])).expanduser().resolve())
        evaluation_part(job_cfg)
        task = task_part(job_cfg)
        run = check(task, where, load)
        try:
            check_task(run)  # lmms-eval's task index, before any worker loads a model
        except ValueError as exc:
            config_error(f"{where}: {exc}")
        container = OmegaConf.to_container(task, resolve=True)
        assert isinstance(container, dict)
        return Job(num=num, overrides=list(overrides), config=job_cfg, hash=config_hash(container),
                   key=adapter_key(run.backbone), describe=identity(run))

    def job_dir(self, job: Job) -> Path:
        """The Hydra job folder of ``job`` (``hydra.sweep.subdir`` under the sweep folder)."""
        return self.sweep_dir / str(job.config.hydra.sweep.subdir)

    def finished_row(self, job: Job) -> dict[str, Any] | None:
        """The stored result of ``job`` when this sweep already finished it (and skipping is on)."""
        self.open()
        assert self.store is not None
        if self.run.search.skip_finished and self.store.finished(job.hash):
            row = self.store.get(job.hash)
            # the folder of the trial that produced it (a search may ask the same point again under a new
            # number), found by name under this sweep folder so a moved sweep folder still resumes
            folder = self.sweep_dir / Path(str(row.get("job_dir") or self.job_dir(job))).name
            if not folder.is_dir():  # its metrics, log and samples are gone: run it again
                print(f"note: trial {row.get('trial')}'s folder {folder} is missing; running it again",
                      file=sys.stderr, flush=True)
                return None
            return row
        return None

    def skip(self, job: Job, row: dict[str, Any]) -> dict[str, Any]:
        """Count ``job`` as done by an earlier run of this sweep (``row`` is its stored result); log its
        W&B run if the earlier run was killed before that run was finished."""
        assert self.store is not None
        if self.tracker is not None and self.tracker.enabled and not self.store.logged(row):
            self.tracker.trial(row, public_config(job.config), on_logged=self.store.mark_logged)
            self.relogged += 1
        self.skipped.append(row)
        self.seen.add(job.hash)
        self._tick()
        return row

    def record(self, job: Job, outcome: dict[str, Any]) -> dict[str, Any]:
        """Store one ended trial (once) and queue its W&B run; return its result row."""
        assert self.store is not None
        job_dir = self.job_dir(job)
        common = {"trial": job.num, "hash": job.hash, "sweep": self.name,
                  "overrides": shown_overrides(job.overrides), "job_dir": str(job_dir)}
        if outcome.get("status") == "ok":
            row = dict(outcome["row"])
            row.update(common)
        else:
            row = {**common, **job.describe, "status": "failed", "error": outcome.get("error", "unknown error"),
                   "model_loads": outcome.get("model_loads", 0)}  # a failed trial may have loaded the model
            tb = job_dir / "traceback.txt"
            if not tb.exists():  # the worker died before it could write one
                job_dir.mkdir(parents=True, exist_ok=True)
                tb.write_text(outcome.get("traceback") or row["error"])
        self.store.append(row)
        self.ran.append(row)
        self.seen.add(job.hash)
        if self.tracker is not None:
            self.tracker.trial(row, public_config(job.config), on_logged=self.store.mark_logged)
        self._tick()
        return row

    def job_return(self, job: Job, row: dict[str, Any]) -> Any:
        """Hydra's JobReturn for a trial's row (a failed trial's value is a TrialFailed exception)."""
        from hydra.core.utils import JobReturn, JobStatus

        ok = row.get("status") == "ok"
        ret = JobReturn(
            overrides=list(job.overrides),
            cfg=task_part(job.config),
            hydra_cfg=None,
            working_dir=row.get("job_dir"),
            task_name=str(job.config.hydra.job.name),
            status=JobStatus.COMPLETED if ok else JobStatus.FAILED,
        )
        ret.return_value = row if ok else TrialFailed(f"trial {job.num} failed: {row.get('error')}")
        return ret

    def run_jobs(self, jobs: Sequence[Job]) -> list[Any]:
        """Run a batch (all already prepared): finished ones are skipped, the rest go to the pool."""
        self.open()
        finished = {job.num: self.finished_row(job) for job in jobs}
        todo = [job for job in jobs if finished[job.num] is None]
        pool = self.workers() if todo else None  # Ray joined or started before the progress bar draws
        if self.progress is None:
            self.start_progress(len(jobs))
        returns = {job.num: self.job_return(job, self.skip(job, row)) for job in jobs
                   if (row := finished[job.num]) is not None}
        if pool is not None:
            pool.add(todo)
            while pool.outstanding():
                for job, outcome in pool.wait():
                    returns[job.num] = self.job_return(job, self.record(job, outcome))
        return [returns[job.num] for job in jobs]

    # ------------------------------------------------------------------ end
    def summary(self, rows: list[dict[str, Any]], front: list[dict[str, Any]]) -> dict[str, Any]:
        ok_rows = [r for r in rows if r.get("status") == "ok"]
        scored = [r for r in ok_rows if isinstance(r.get(self.objective), (int, float))]
        best = max(scored, key=lambda r: (r[self.objective], -float(r.get(self.cost) or 0.0)), default=None)
        failures = [r for r in self.ran if r.get("status") != "ok"]

        wandb = None
        if self.tracker is not None and self.tracker.enabled:
            where = self.sweep_dir / "wandb"
            wandb = (f"{self.tracker.mode}: project {self.run.wandb.project}, group {self.name}, "
                     f"{self.tracker.logged} trial runs + 1 sweep run")
            if self.relogged:
                wandb += f" ({self.relogged} of them logged again: an earlier driver stopped before finishing them)"
            if self.tracker.mode == "offline":
                wandb += f" under {where} (upload: wandb sync {where}/offline-run-*)"
        return {
            "name": self.name,
            "folder": str(self.sweep_dir),
            "trials": len(self.seen),
            "ran": len(self.ran) - len(failures),
            "skipped": len(self.skipped),
            "failed": len(failures),
            "wall_seconds": time.perf_counter() - self.started,
            "workers": self.n_workers,
            **{key: int(sum(int(r.get(key) or 0) for r in self.ran)) for key in COUNTERS},
            "cache_dir": self.run.cache_dir,
            "objective": self.objective,
            "cost": self.cost,
            "best": best,
            "front": front,
            "ok_rows": len(ok_rows),
            "failures": failures,
            "wandb": wandb,
        }

    def finish(self, extra: dict[str, Any] | None = None) -> int:
        """Write reports, log the W&B sweep run, print the summary, stop workers; return the exit code."""
        from rediprune.reports.overview import write_overview
        from rediprune.reports.pareto import pareto_front
        from rediprune.sweep.summary import paper_tables, summary_text

        self.open()
        assert self.store is not None
        if self.progress is not None:
            self.progress.close()
        self.close_workers()
        # trial order, so ties on the front resolve to the lowest trial number whatever finished first
        rows = sorted(self.store.latest(), key=lambda r: (not isinstance(r.get("trial"), int), r.get("trial") or 0))
        front = pareto_front(rows, self.objective, self.cost)
        paths = write_overview(rows, front, self.sweep_dir, objective=self.objective, cost=self.cost, title=self.name)
        paper = paper_tables(self.sweep_dir, self.run.search.report, self.master)  # search.report layouts
        if self.tracker is not None:
            self.tracker.flush()  # every trial run logged before the counts are read
        stats = self.summary(rows, front)
        stats["paper_tables"] = paper.summary()
        if self.tracker is not None:
            short = {k: v for k, v in stats.items() if not isinstance(v, (list, dict))}
            self.tracker.sweep(rows, front, objective=self.objective, cost=self.cost, config=public_config(self.master),
                               summary={**short, **(extra or {})}, files=[p for k, p in paths.items() if k in ("png", "html")],
                               tables=paper.wandb)
            self.tracker.close()
        record = {k: v for k, v in stats.items() if k not in ("front", "best", "failures")}
        record.update(extra or {})
        record["pareto_trials"] = [r.get("trial") for r in front]
        record["best_trial"] = stats["best"].get("trial") if stats["best"] else None
        write_text(self.sweep_dir / "summary.json", json.dumps(record, indent=2, default=str))
        print(summary_text(stats), flush=True)
        return TRIAL_FAILED_EXIT if stats["failed"] else 0

    def close_workers(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        if self.ray is not None:
            self.ray.close()
            self.ray = None

    def abort(self) -> None:
        """On an exception or Ctrl-C: stop workers and flush W&B; what finished is already stored."""
        if self.progress is not None:
            self.progress.close()
        self.close_workers()
        if self.tracker is not None:
            self.tracker.close()

    @contextmanager
    def stopping_on_error(self) -> Iterator[None]:
        """Run a sweep body; on any exception ``abort``, and exit with status 2 if no worker could start.

        Ctrl-C ends the sweep with one line saying how to resume (exit 130). Python raises the interrupt
        wherever the main thread happens to be, and a library can turn it into its own error on the way
        out (OmegaConf does, mid-composition), so the handler records it and any exception that follows
        an interrupt counts as the interrupt.
        """
        interrupted = threading.Event()

        def on_interrupt(signum: int, frame: Any) -> None:
            interrupted.set()
            raise KeyboardInterrupt

        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, on_interrupt)
        try:
            yield
        except WorkersUnavailable as exc:  # nothing could run: say why
            self.abort()
            config_error(str(exc))
        except BaseException as exc:
            if not (interrupted.is_set() or isinstance(exc, KeyboardInterrupt)):
                self.abort()
                raise
            if previous is not None:  # a second Ctrl-C during the clean-up stops it the usual way
                signal.signal(signal.SIGINT, previous)
                previous = None
            self.abort()
            done = len(self.store) if self.store is not None else 0
            print(f"\ninterrupted: {done} trial result(s) kept in {self.sweep_dir}; run the same command again "
                  "to resume (finished trials are skipped)", file=sys.stderr, flush=True)
            raise SystemExit(INTERRUPTED_EXIT) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

__all__ = ["CONFIG_ERROR_EXIT", "TRIAL_FAILED_EXIT", "SweepDriver", "TrialFailed", "config_error", "public_config",
           "shown_overrides"]
