"""Resident workers: a process keeps its loaded model and feature cache from one trial to the next.

Usage::

    resident().configure(reuse_answers=True, cache_max_gb=20.0)   # the sweep's settings, once per process
    adapter = resident().adapter_for(run)        # loads on first use (or when the backbone changes)
    resident().loads                             # model loads in this process

    Worker = ray.remote(TrialWorker)             # dispatch.py adds resources and restart policy
    actor = Worker.remote(task_function, callbacks, resident_settings(sweep))
    outcome = ray.get(actor.run.remote(job_config))   # {"status": "ok", "row": {...}} or a failure

A Ray *actor* is a long-lived process, so a model loaded by one trial serves the next; the published
Hydra Ray launcher runs each job as a *task*, and Ray gives GPU tasks a fresh process each time (a 7B
reload per trial). Each actor runs Hydra's own ``run_job`` on the job config the driver composed, so a
trial's folder looks exactly like one from Hydra's basic launcher (``.hydra/``, the job log) plus the
files the trial writes. If the actor process dies mid-trial (killed, out of memory), Ray restarts it and
re-sends the trial (``max_task_retries``); the new process loads the model again.
"""
from __future__ import annotations

import gc
import hashlib
import json
import os
import socket
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rediprune.evaluation.cache import TensorCache, namespace
from rediprune.sweep.config import LaunchConfig, SearchConfig

# What a trial counts in its worker process: result-row columns, summed over the sweep in its summary.
COUNTERS = ("model_loads", "cache_hits", "cache_misses", "cache_disk_hits", "answers_reused", "answers_generated")


def adapter_key(backbone: Any) -> str:
    """What a loaded model depends on: the whole backbone config (12 hex)."""
    data = asdict(backbone) if not isinstance(backbone, dict) else backbone
    text = json.dumps(data, sort_keys=True, default=lambda v: getattr(v, "value", str(v)))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Resident:
    """One process's loaded adapter (one backbone at a time) and its feature cache."""

    def __init__(self) -> None:
        self.adapter: Any = None
        self.key: str | None = None
        self.loads = 0
        self.cache: TensorCache | None = None
        # generated answers, keyed by BackboneAdapter.answer_key, in memory and on disk under
        # cache_dir/answers/<backbone namespace>: trials, workers and later sweeps reuse them when
        # search.reuse_answers is on
        self.answers: TensorCache | None = None
        # the sweep's settings for this process (``configure``): not part of any trial's config
        self.reuse = SearchConfig.reuse_answers  # search.reuse_answers (the schema's default until configured)
        self.cache_max_gb = LaunchConfig.cache_max_gb  # launch.cache_max_gb

    def configure(self, *, reuse_answers: bool, cache_max_gb: float) -> None:
        """Apply the sweep's process-wide settings (the worker's constructor, or a no-``-m`` sweep.py run)."""
        self.reuse = bool(reuse_answers)
        self.cache_max_gb = float(cache_max_gb)

    def adapter_for(self, run: Any) -> Any:
        """The loaded adapter for ``run.backbone``; a different backbone replaces the resident one."""
        key = adapter_key(run.backbone)
        if self.adapter is not None and self.key == key:
            return self.adapter
        self.release()  # free the old model first: two 7B models rarely fit on one GPU
        from rediprune.evaluation import load_model

        adapter = load_model(run)
        self.loads += 1
        if hasattr(adapter, "feature_cache"):
            folder = Path(run.cache_dir).expanduser() / "features" / namespace(backbone=asdict(run.backbone))
            self.cache = TensorCache(
                folder, max_disk_bytes=int(self.cache_max_gb * 2**30), validate=adapter.feature_problem
            )
            adapter.feature_cache = self.cache
        if hasattr(adapter, "answer_cache"):
            folder = Path(run.cache_dir).expanduser() / "answers" / namespace(backbone=asdict(run.backbone))
            self.answers = TensorCache(folder, max_memory_bytes=256 << 20, max_disk_bytes=1 << 30)
        self.adapter, self.key = adapter, key
        return adapter

    def release(self) -> None:
        self.adapter = self.key = self.cache = self.answers = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # pragma: no cover - torch missing or CUDA in a bad state
            pass

    def counts(self) -> dict[str, int]:
        """This process's cumulative counters (``COUNTERS``): model loads, the resident adapter's feature
        cache hits and misses, entries read from disk, answers reused and generated."""
        cache = getattr(self.adapter, "cache_stats", None) or {}
        answers = getattr(self.adapter, "answer_stats", None) or {}
        return {"model_loads": self.loads, "cache_hits": int(cache.get("hits", 0)),
                "cache_misses": int(cache.get("misses", 0)),
                "cache_disk_hits": self.cache.disk_hits if self.cache is not None else 0,
                "answers_reused": int(answers.get("reused", 0)), "answers_generated": int(answers.get("generated", 0))}

    def reuse_answers(self, adapter: Any) -> None:
        """Plug this process's answer store into ``adapter`` (``search.reuse_answers``), or unplug it."""
        if hasattr(adapter, "answer_cache"):
            adapter.answer_cache = self.answers if self.reuse else None


_RESIDENT = Resident()


def resident_settings(sweep: Any) -> dict[str, Any]:
    """The sweep settings (a SweepConfig's) a resident process needs: ``Resident.configure``'s arguments."""
    return {"reuse_answers": sweep.search.reuse_answers, "cache_max_gb": sweep.launch.cache_max_gb}


def resident() -> Resident:
    """This process's resident state (a worker's: its model, caches and the sweep's settings)."""
    return _RESIDENT


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of an exception and of its innermost cause (a RetryError says little alone)."""
    text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    root = exc
    while root.__cause__ is not None or (root.__context__ is not None and not root.__suppress_context__):
        root = root.__cause__ or root.__context__  # type: ignore[assignment]
    if root is not exc:
        first = str(root).splitlines()[0] if str(root) else ""
        text += f" (caused by {type(root).__name__}: {first})".replace(": )", ")")
    return text[:1000]


class TrialWorker:
    """A Ray actor body: runs trials one at a time with Hydra's ``run_job`` in a long-lived process."""

    def __init__(self, task_function: Any, callbacks: Any = None, settings: dict[str, Any] | None = None) -> None:
        from hydra.core.utils import setup_globals
        from hydra.types import HydraContext

        setup_globals()  # registers Hydra's resolvers (${now:...}, ${hydra:...}) in this process
        self.task_function = task_function
        self.hydra_context = HydraContext(config_loader=None, callbacks=callbacks)  # type: ignore[arg-type]
        self.pid = os.getpid()
        if settings:
            resident().configure(**settings)

    def identity(self) -> dict[str, Any]:
        return {"pid": self.pid, "host": socket.gethostname(), "model_loads": resident().loads}

    def run(self, job_config: Any) -> dict[str, Any]:
        """Run one job; never raises for a failing trial (the outcome says so), so Ray only retries deaths."""
        from hydra.core.utils import JobStatus, run_job

        loads_before = resident().loads
        ret = run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=job_config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
        if ret.status == JobStatus.COMPLETED:
            return {"status": "ok", "row": ret.return_value, "pid": self.pid}
        try:
            ret.return_value  # a failed job's value re-raises its exception (Hydra's JobReturn)
            exc: BaseException = RuntimeError("trial failed")
        except Exception as raised:  # noqa: BLE001 - the trial's own exception, reported as the outcome
            exc = raised
        return {
            "status": "failed",
            "error": describe_error(exc),
            "traceback": "".join(traceback.format_exception(exc)),
            "pid": self.pid,
            "model_loads": resident().loads - loads_before,
        }


__all__ = ["COUNTERS", "Resident", "TrialWorker", "adapter_key", "describe_error", "resident", "resident_settings"]
