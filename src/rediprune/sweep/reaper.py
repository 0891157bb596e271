"""Stop the processes of a driver's own Ray instance when the driver dies without shutting it down.

Usage (the driver side, :class:`rediprune.sweep.dispatch.RaySession`)::

    reaper = Reaper.watch(root_pids)   # the processes ray.init started, right after it returned
    ...
    reaper.close()                     # after ray.shutdown(): stops what is left, then the reaper

Why by hand: when the driver of a local Ray is killed (SIGKILL, OOM killer, a cluster scheduler's
preemption), Ray's GCS and raylet notice at once, but its dashboard and runtime-env agents and idle worker
processes only give up after about a minute of failed reconnects (measured: 61 s here, unchanged by
``gcs_rpc_server_reconnect_timeout_s``). Ray has no "die with the driver" switch for them, and a killed
process cannot clean up after itself, so a small separate process does: it holds the read end of a pipe
whose write end only the driver has. When the pipe ends (the driver exited, however), it terminates every
process it has seen descend from the Ray processes the driver started, then exits. While the driver lives
it refreshes that list every ``interval`` seconds, so the list is complete at the moment the driver dies,
when the raylet (the parent of the workers and agents) may already be gone.

Only processes that descend from ``ray.init``'s own children are touched: a Ray cluster the sweep merely
joined, and anything else the driver started (W&B's service), are left alone.
"""
from __future__ import annotations

import os
import select
import subprocess
import sys
from typing import Iterable

import psutil

INTERVAL = 0.5  # seconds between refreshes of the process list
GRACE = 2.0  # seconds between SIGTERM and SIGKILL


def _identity(pid: int) -> tuple[int, float] | None:
    try:
        return pid, psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _alive(identities: Iterable[tuple[int, float]]) -> list[psutil.Process]:
    """The processes still running whose pid *and* start time match (a reused pid is not ours)."""
    found = []
    for pid, started in identities:
        try:
            process = psutil.Process(pid)
            if process.create_time() == started:
                found.append(process)
        except psutil.Error:
            continue
    return found


def _tree(roots: Iterable[tuple[int, float]]) -> set[tuple[int, float]]:
    seen: set[tuple[int, float]] = set()
    for process in _alive(roots):
        try:
            members = [process, *process.children(recursive=True)]
        except psutil.Error:
            members = [process]
        for member in members:
            try:
                seen.add((member.pid, member.create_time()))
            except psutil.Error:
                continue
    return seen


def stop(identities: Iterable[tuple[int, float]], grace: float = GRACE) -> int:
    """SIGTERM these processes, SIGKILL those still alive after ``grace`` seconds; returns how many."""
    processes = [p for p in _alive(identities) if p.pid != os.getpid()]
    for process in processes:
        try:
            process.terminate()
        except psutil.Error:
            pass
    _, left = psutil.wait_procs(processes, timeout=grace)
    for process in left:
        try:
            process.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(left, timeout=grace)
    return len(processes)


def serve(roots: list[tuple[int, float]], interval: float = INTERVAL) -> None:
    """Reaper main loop: track the trees of ``roots`` until stdin ends, then stop every member seen."""
    seen = _tree(roots)
    stdin = sys.stdin.fileno()
    while True:
        ready, _, _ = select.select([stdin], [], [], interval)
        if ready and not os.read(stdin, 4096):
            break
        seen |= _tree(seen)
    stop(seen)


class Reaper:
    """The driver's handle on its reaper process (see the module docstring)."""

    def __init__(self, process: subprocess.Popen | None) -> None:
        self.process = process

    @classmethod
    def watch(cls, root_pids: Iterable[int]) -> "Reaper":
        roots = [identity for identity in map(_identity, root_pids) if identity]
        if not roots:
            return cls(None)
        process = subprocess.Popen(
            [sys.executable, "-m", "rediprune.sweep.reaper", *(f"{pid}:{started!r}" for pid, started in roots)],
            stdin=subprocess.PIPE, start_new_session=True,  # a Ctrl-C meant for the driver does not reach it
        )
        return cls(process)

    def close(self, timeout: float = 10.0) -> None:
        """End the pipe (the reaper stops what is left of the trees) and wait for the reaper to exit."""
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
        self.process = None


def _parse(argument: str) -> tuple[int, float]:
    pid, started = argument.split(":", 1)
    return int(pid), float(started)


if __name__ == "__main__":
    serve([_parse(argument) for argument in sys.argv[1:]])
