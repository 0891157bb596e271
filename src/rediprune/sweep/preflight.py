"""Checks of a sweep against this machine and its services, before Ray starts or a model loads.

Usage (``SweepDriver`` calls them; each raises ValueError with one line naming the parameter, the value
and what is allowed, which the driver prints before exiting with status 2)::

    check_sweep(run, sweep_dir)    # sweep folder, Optuna storage, objective, worker count, Ray address
    check_task(run)                # dataset.task in lmms-eval's task index (once per task and folder)

The schemas (``rediprune.config``) check what a value may be anywhere; these check what only this
machine can tell: whether a folder can be written, a storage driver is installed, a Ray address answers,
the local Ray can hold the workers asked for. Without them each of these mistakes surfaced late — a
traceback from ``mkdir``, a hang of minutes in ``ray.init``, a hundred worker processes on two cores.
"""
from __future__ import annotations

import difflib
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from rediprune.evaluation import OUTPUTS
from rediprune.sweep.workers import COUNTERS

ADDRESS_TIMEOUT_S = 5.0  # a Ray GCS that does not accept a TCP connection in this time is not there
# Result-row columns a sweep may optimise (besides any ``metric/<name>`` of the task): the evaluation's
# numeric outputs and what the trial counts and times around it.
RESULT_METRICS = (*OUTPUTS, *COUNTERS, "trial_seconds")


def _hint(value: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_sweep_folder(sweep_dir: Path) -> None:
    """``hydra.sweep.dir`` must be a folder this process can create (or already has) and write in."""
    shown = f"hydra.sweep.dir={str(sweep_dir)!r} is not allowed"
    existing = sweep_dir
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{shown}: {existing} is a file; expected a folder path (or one that can be created)")
    try:
        probe = tempfile.mkdtemp(prefix=".write-check-", dir=existing)
        os.rmdir(probe)
    except OSError as exc:
        raise ValueError(f"{shown}: cannot write in {existing} ({exc.strerror}); expected a writable folder") from None


def check_storage(url: str) -> None:
    """An Optuna storage URL: a known SQLAlchemy dialect whose driver is installed; SQLite in an existing folder."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    shown = f"search.storage={url!r} is not allowed"
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ValueError(f"{shown} ({exc}); expected an SQLAlchemy URL such as sqlite:///path.db or "
                         "postgresql+psycopg://user@host/db") from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise ValueError(f"{shown}: its driver is not installed ({exc}); expected a driver this environment has "
                         "(sqlite, or postgresql+psycopg with the project's postgres extra)") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).expanduser().resolve().parent
        if not folder.is_dir():
            raise ValueError(f"{shown}: folder {folder} does not exist; expected an SQLite file in an existing folder")


def check_objective(search: Any) -> None:
    """``search.objective`` and ``search.cost`` must be columns a trial's result row has."""
    for key in ("objective", "cost"):
        value = str(getattr(search, key))
        if value in RESULT_METRICS or value.startswith("metric/"):
            continue
        raise ValueError(
            f"search.{key}={value!r} is not allowed; expected metric/<name> of the task or one of "
            f"{', '.join(RESULT_METRICS)}{_hint(value, RESULT_METRICS)}"
        )


def _local_ray(launch: Any) -> bool:
    return not launch.address and not os.environ.get("RAY_ADDRESS")


def machine_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_workers(launch: Any) -> None:
    """A local Ray must hold ``launch.num_workers`` workers of ``launch.cpus_per_worker`` CPUs.

    Ray places as many actors as its logical CPUs allow; a local Ray started with num_workers × cpus CPUs
    would start them all on a machine with far fewer cores and crawl. ``launch.num_cpus`` set explicitly
    is the user's choice to oversubscribe.
    """
    if not _local_ray(launch):
        return  # a cluster may autoscale: dispatch waits up to launch.start_timeout for the workers
    cpus = launch.num_cpus or machine_cpus()
    need = launch.num_workers * launch.cpus_per_worker
    if need > cpus:
        fit = max(1, int(cpus // launch.cpus_per_worker))
        source = "launch.num_cpus" if launch.num_cpus else "this machine"
        raise ValueError(
            f"launch.num_workers={launch.num_workers} is not allowed: {launch.num_workers} workers × "
            f"{launch.cpus_per_worker:g} CPU (launch.cpus_per_worker) need {need:g} CPUs and {source} has {cpus}; "
            f"expected launch.num_workers ≤ {fit} (or launch.num_cpus=N to oversubscribe on purpose)"
        )


def check_address(launch: Any) -> None:
    """A ``host:port`` / ``ray://host:port`` address must accept a connection within ADDRESS_TIMEOUT_S."""
    address = launch.address
    if not address or address == "auto":
        return
    text = address.split("://", 1)[-1]
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"launch.address={address!r} is not allowed; expected null, 'auto', 'host:port' or "
                         "'ray://host:port'")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=ADDRESS_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(
            f"launch.address={address!r} is not allowed: nothing answers there within {ADDRESS_TIMEOUT_S:g} s "
            f"({reason}); expected the address of a running Ray cluster (ray start --head prints it), "
            "'auto', or null for a local Ray"
        ) from None


def check_sweep(run: Any, sweep_dir: Path) -> None:
    """Every machine-dependent check of a sweep's settings (see the module docstring)."""
    check_sweep_folder(sweep_dir)
    if str(getattr(run.search.kind, "value", run.search.kind)) == "pareto" and run.search.storage:
        check_storage(run.search.storage)
    check_objective(run.search)
    check_workers(run.launch)
    check_address(run.launch)


_TASKS_CHECKED: dict[tuple[str, str | None], str | None] = {}


def task_problem(task: str, include_path: str | None) -> str | None:
    """The evaluation's own task check (``rediprune.evaluation.runner.task_manager``); its message or None."""
    from types import SimpleNamespace

    from rediprune.evaluation.runner import task_manager

    try:
        task_manager(SimpleNamespace(dataset=SimpleNamespace(task=task, include_path=include_path)))
    except ValueError as exc:  # ConfigError: the task name and close matches
        return str(exc)
    return None


def _exit_with_parent() -> None:
    """Pool-worker initializer: end this process when the driver that started it dies.

    A driver killed while the worker builds lmms-eval's task index (SIGKILL, OOM) would otherwise leave
    the worker — about 0.5 GB with lmms-eval imported — waiting on its call queue forever. The spawn start
    method hands every child its parent's sentinel, which becomes readable when the parent exits.
    """
    import multiprocessing
    import threading
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def check_task(run: Any) -> None:
    """``dataset.task`` must be in lmms-eval's task index (bundled tasks or lmms-eval's own).

    The index is built in a short-lived child process: importing lmms-eval into the driver breaks the
    driver's W&B service connection (the sweep-level run is then lost; tests/test_faults_sweep.py).
    """
    key = (run.dataset.task, run.dataset.include_path)
    if key not in _TASKS_CHECKED:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_exit_with_parent) as pool:
            _TASKS_CHECKED[key] = pool.submit(task_problem, *key).result()
    if _TASKS_CHECKED[key]:
        raise ValueError(_TASKS_CHECKED[key])


__all__ = ["RESULT_METRICS", "check_address", "check_objective", "check_storage", "check_sweep",
           "check_sweep_folder", "check_task", "check_workers"]
