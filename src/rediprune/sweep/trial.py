"""One trial: the body of ``src/sweep.py``'s task function, run by a resident worker.

Usage (Hydra calls it with the job's composed config; its folder is the Hydra job folder)::

    row = run_trial(cfg)      # {"hash": ..., "status": "ok", "primary_metric": ..., "tflops": ...}

Writes into the job folder, next to Hydra's ``.hydra/`` and job log:

- ``config.yaml``     the resolved, checked evaluation config of this trial (no sweep settings)
- ``attempts.jsonl``  one line per start (pid, host, time): a worker killed mid-trial shows two
- ``metrics.json``    the evaluation's metrics and the trial's bookkeeping (the row the driver records)
- ``traceback.txt``   the full traceback, when the trial raised (then it re-raises)
- ``samples.jsonl``, ``lmms_eval_results.json``   from the evaluation

The model comes from the process's resident state, so only a worker's first trial (per backbone) loads.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from rediprune.reports.render import write_text
from rediprune.sweep.naming import config_hash
from rediprune.sweep.workers import COUNTERS, resident

log = logging.getLogger("rediprune.trial")


def _job_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    return Path.cwd()


def _job_num() -> int | None:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        num = OmegaConf.select(HydraConfig.get(), "job.num")
        return int(num) if num is not None else None
    return None


def _attempt(job_dir: Path) -> int:
    """Record this start in attempts.jsonl and return its 1-based number."""
    line = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}) + "\n"
    fd = os.open(job_dir / "attempts.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(job_dir / "attempts.jsonl") as fh:
        return sum(1 for _ in fh)


def run_trial(cfg: DictConfig) -> dict[str, Any]:
    """Check ``cfg``, evaluate it with the resident model and return the result row (see module doc)."""
    from rediprune.config import load
    from rediprune.evaluation import identity

    started = time.perf_counter()
    job_dir = _job_dir()
    job_dir.mkdir(parents=True, exist_ok=True)
    attempt = _attempt(job_dir)
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    cfg_hash = config_hash(container)
    try:
        run = load(cfg)
        (job_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(run)))
        num = _job_num()
        log.info("trial %s (attempt %d, pid %d): %s", num, attempt, os.getpid(), identity(run))
        state = resident()
        before = state.counts()
        adapter = state.adapter_for(run)
        if state.loads != before["model_loads"]:  # a new adapter's caches count from zero
            before = {**state.counts(), "model_loads": before["model_loads"]}
        state.reuse_answers(adapter)
        from rediprune.evaluation import run_evaluation

        metrics = run_evaluation(run, adapter=adapter, output_dir=job_dir, log=log.info)
        after = state.counts()
    except BaseException:
        (job_dir / "traceback.txt").write_text(traceback.format_exc())
        log.exception("trial failed")
        raise
    row: dict[str, Any] = {"trial": _job_num(), "hash": cfg_hash, "status": "ok"}
    row.update(metrics)
    row.update({key: after[key] - before[key] for key in COUNTERS})
    row.update(
        attempt=attempt,
        worker_pid=os.getpid(),
        worker_host=socket.gethostname(),
        trial_seconds=time.perf_counter() - started,
        job_dir=str(job_dir),
    )
    write_text(job_dir / "metrics.json", json.dumps(row, indent=2, default=str, allow_nan=True))
    (job_dir / "traceback.txt").unlink(missing_ok=True)  # an earlier failed attempt's, no longer true
    log.info("trial done in %.1f s: %s=%s tflops=%s", row["trial_seconds"], "primary_metric",
             row.get("primary_metric"), row.get("tflops"))
    return row


__all__ = ["run_trial"]
