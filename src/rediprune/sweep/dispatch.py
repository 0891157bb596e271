"""Ray: start or join a cluster and keep a pool of resident trial workers busy.

Usage::

    ray_session = RaySession.open(launch)            # local Ray (dashboard off) or launch.address
    pool = WorkerPool(launch, gpus_per_worker=0, task_function=fn, callbacks=cb)
    pool.submit(job)                                  # job.key: the backbone it needs, job.config: what to run
    for job, outcome in pool.wait():                  # as soon as any trial ends
        ...
    pool.close(); ray_session.close()

Each worker is an actor holding ``num_gpus``/``num_cpus``; a free worker takes the next pending trial,
preferring one whose backbone it already holds (``WorkerPool.pick``), so two backbones in one sweep do
not ping-pong reloads. ``max_restarts=-1`` restarts a dead worker process and ``max_task_retries``
re-sends the trial it was running; only a trial whose retries are used up comes back failed.
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

import psutil

from rediprune.sweep.reaper import Reaper
from rediprune.sweep.workers import TrialWorker

log = logging.getLogger(__name__)


class WorkersUnavailable(RuntimeError):
    """No worker could start: the cluster has no node with the CPUs/GPUs one worker asks for."""


@dataclass
class Job:
    """A trial ready to run: its number, Hydra overrides, composed config and identity."""

    num: int
    overrides: list[str]
    config: Any  # the job's full DictConfig (with its hydra node), as run_job takes it
    hash: str
    key: str  # adapter key: workers holding this backbone are preferred
    describe: dict[str, Any] = field(default_factory=dict)


def _is_ray(process: psutil.Process) -> bool:
    """Whether a child process is one of Ray's (its executable or script lives in the ray package): other
    threads of the driver start processes too (W&B's service), and those must outlive ``ray.shutdown``."""
    try:
        return any("/ray/" in part for part in process.cmdline())
    except psutil.Error:
        return False


class RaySession:
    """The Ray connection of one sweep; shuts down only an instance it started itself."""

    def __init__(self, started: bool, address: str | None, reaper: Reaper | None = None) -> None:
        self.started = started
        self.local = started and address is None  # a Ray of our own: no autoscaler will add nodes
        self.reaper = reaper

    def fitting_workers(self, wanted: int, cpus: float, gpus: float) -> int:
        """How many of ``wanted`` workers this Ray can ever place (a cluster may grow: all of them)."""
        import ray

        if not self.local:
            return wanted
        total = ray.cluster_resources()
        fit = int(total.get("CPU", 0) // cpus) if cpus > 0 else wanted
        if gpus > 0:
            fit = min(fit, int(total.get("GPU", 0) // gpus))
        if fit < 1:
            raise WorkersUnavailable(
                f"a worker needs {cpus:g} CPU and {gpus:g} GPU but this machine's Ray has "
                f"{total.get('CPU', 0):g} CPU and {total.get('GPU', 0):g} GPU; expected launch.gpus_per_worker=0 "
                f"(or backbone.device=cpu) here, or a GPU machine"
            )
        if fit < wanted:
            log.warning("launch.num_workers=%d but this machine fits %d worker(s) of %g CPU / %g GPU: using %d",
                        wanted, fit, cpus, gpus, fit)
        return min(fit, wanted)

    @classmethod
    def open(cls, launch: Any) -> "RaySession":
        import ray

        if ray.is_initialized():  # already connected (tests, notebooks)
            return cls(False, None)
        common = dict(log_to_driver=launch.log_to_driver, logging_level=logging.WARNING)
        if launch.address:
            try:
                ray.init(address=launch.address, **common)
            except ConnectionError as exc:  # "auto" with no cluster on this machine (preflight probes host:port)
                raise WorkersUnavailable(
                    f"launch.address={launch.address!r} is not allowed: {str(exc).splitlines()[0].rstrip('.')}; expected the "
                    "address of a running Ray cluster (ray start --head prints it), or null for a local Ray"
                ) from None
            return cls(True, launch.address)
        if os.environ.get("RAY_ADDRESS"):
            # Ray's own variable: `ray job submit` sets it for the entrypoint, so the job joins the
            # cluster it was submitted to instead of starting a second Ray on the head node.
            ray.init(**common)
            return cls(True, os.environ["RAY_ADDRESS"])
        num_cpus = launch.num_cpus or max(1, int(round(launch.num_workers * launch.cpus_per_worker)))
        # address="local": always a new instance, even if `ray start` left a cluster on this machine
        # (address=None would join that one).
        before = {child.pid for child in psutil.Process().children()}
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **common)
        # The processes ray.init started (GCS, raylet, ...): a reaper stops their trees if we die.
        started = [child.pid for child in psutil.Process().children() if child.pid not in before and _is_ray(child)]
        return cls(True, None, Reaper.watch(started))

    def close(self) -> None:
        import ray

        if self.started and ray.is_initialized():
            ray.shutdown()
        if self.reaper is not None:
            self.reaper.close()


@dataclass
class _Slot:
    actor: Any
    probe: Any = None  # identity() call answered once the actor process is up
    ready: bool = False
    dead: bool = False
    key: str | None = None  # backbone this worker holds (from its last trial)
    job: Job | None = None
    ref: Any = None


class WorkerPool:
    """``launch.num_workers`` resident actors; submit jobs, wait for outcomes.

    A worker gets trials only once its actor is up: on an autoscaling cluster the others join as their
    nodes arrive; if none can start within ``launch.start_timeout`` (no node has the CPUs/GPUs a worker
    asks for), the sweep stops with that message instead of waiting for ever.
    """

    def __init__(self, launch: Any, *, gpus_per_worker: float, task_function: Any, callbacks: Any,
                 num_workers: int | None = None, settings: dict[str, Any] | None = None) -> None:
        import ray

        self.request = {"CPU": launch.cpus_per_worker, "GPU": gpus_per_worker}
        self.start_timeout = launch.start_timeout
        options = dict(
            num_cpus=launch.cpus_per_worker,
            num_gpus=gpus_per_worker,
            max_restarts=-1,  # a killed worker comes back (it reloads the model on its next trial)
            max_task_retries=launch.max_retries,
        )
        remote = ray.remote(TrialWorker).options(**options)
        count = launch.num_workers if num_workers is None else num_workers
        self.slots = [_Slot(remote.remote(task_function, callbacks, settings)) for _ in range(count)]
        for slot in self.slots:
            slot.probe = slot.actor.identity.remote()
        self.started = time.monotonic()
        self.pending: deque[Job] = deque()

    # ------------------------------------------------------------------ queue
    def add(self, jobs: Iterable[Job]) -> None:
        self.pending.extend(jobs)

    @staticmethod
    def pick(pending: deque[Job], key: str | None) -> Job:
        """The first pending job for backbone ``key`` if any, else the first pending job."""
        for i, job in enumerate(pending):
            if job.key == key:
                del pending[i]
                return job
        return pending.popleft()

    def busy(self) -> int:
        """Trials running now."""
        return sum(slot.job is not None for slot in self.slots)

    def outstanding(self) -> int:
        """Trials running or queued."""
        return self.busy() + len(self.pending)

    def submit(self, job: Job) -> None:
        """Queue ``job`` and start whatever free workers can take."""
        self.pending.append(job)
        self.fill()

    def fill(self) -> None:
        """Give every free, started worker a pending job, preferring jobs for the backbone it holds."""
        for slot in self.slots:
            if not self.pending:
                return
            if slot.ready and slot.job is None:
                job = self.pick(self.pending, slot.key)
                slot.job, slot.ref = job, slot.actor.run.remote(job.config)

    def _started(self, refs: list[Any]) -> None:
        """Mark the workers whose identity() answered as ready (or dead if their start failed)."""
        import ray
        from ray.exceptions import RayActorError

        for slot in self.slots:
            if slot.probe in refs:
                try:
                    ray.get(slot.probe)
                    slot.ready = True
                except RayActorError as exc:
                    slot.dead = True
                    log.warning("a worker failed to start: %s", str(exc).splitlines()[0])
                slot.probe = None
        if all(slot.dead for slot in self.slots):
            raise WorkersUnavailable("no worker could start (see the Ray worker logs)")

    def wait(self) -> list[tuple[Job, dict[str, Any]]]:
        """Block until at least one running trial ends; return the ended ones ([] if nothing is queued)."""
        import ray

        while True:
            self.fill()
            running = {slot.ref: slot for slot in self.slots if slot.job is not None}
            probes = [slot.probe for slot in self.slots if slot.probe is not None]
            if not running and not (self.pending and probes):
                return []
            timeout = None
            if not running:  # waiting for the first worker(s) to start
                timeout = max(0.0, self.start_timeout - (time.monotonic() - self.started))
            ready, _ = ray.wait(list(running) + probes, num_returns=1, timeout=timeout)
            if not ready:
                raise WorkersUnavailable(
                    f"no worker started within launch.start_timeout={self.start_timeout:g} s: no node offers "
                    f"{self.request['CPU']:g} CPU and {self.request['GPU']:g} GPU per worker "
                    f"(cluster resources: {ray.cluster_resources()}); lower launch.cpus_per_worker / "
                    f"launch.gpus_per_worker or add nodes"
                )
            # collect whatever else is already done, without waiting
            rest = [r for r in list(running) + probes if r not in ready]
            if rest:
                more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                ready = ready + more
            self._started([r for r in ready if r not in running])
            done = [self._collect(running[r], r) for r in ready if r in running]
            if done:
                return done

    def _collect(self, slot: _Slot, ref: Any) -> tuple[Job, dict[str, Any]]:
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        job = slot.job
        assert job is not None
        try:
            outcome = ray.get(ref)
            slot.key = job.key
        except RayActorError as exc:  # the worker died and its retries are used up
            outcome = {"status": "failed", "error": f"worker process died: {exc}".splitlines()[0],
                       "traceback": str(exc)}
            slot.key = None
        except RayTaskError as exc:  # cannot normally happen: TrialWorker.run catches trial errors
            outcome = {"status": "failed", "error": str(exc).splitlines()[0], "traceback": str(exc)}
        slot.job = slot.ref = None
        return job, outcome

    def close(self) -> None:
        import ray

        for slot in self.slots:
            try:
                ray.kill(slot.actor)
            except Exception:  # pragma: no cover - already gone
                pass
        self.slots = []


__all__ = ["Job", "RaySession", "WorkerPool", "WorkersUnavailable"]
