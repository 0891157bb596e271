"""Real servers for the tests that need one: a Ray head and a PostgreSQL server, both on 127.0.0.1.

Each is a context manager that starts the server in its own process group and stops it afterwards, so a
test exercises the component itself rather than a mock. PostgreSQL comes from Debian's package
(``apt-get install postgresql``; ``.ci/run`` installs it where it is missing); without its binaries the
tests that need it are skipped with that reason.
"""
from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ray_head(root: Path, num_cpus: int = 2) -> Iterator[dict[str, str]]:
    """A Ray head (with dashboard, for ``ray job submit``); yields its address and dashboard URL."""
    port, dash = free_port(), free_port()
    log = open(root / "ray_head.log", "w")
    proc = subprocess.Popen(
        ["ray", "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
         f"--num-cpus={num_cpus}", "--disable-usage-stats"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{dash}/api/version", timeout=1)
            break
        except urllib.error.HTTPError:  # 401 without the token: the server is up
            break
        except Exception:
            assert proc.poll() is None, (root / "ray_head.log").read_text()
            time.sleep(0.25)
    try:
        yield {"address": f"127.0.0.1:{port}", "dashboard": f"http://127.0.0.1:{dash}"}
    finally:
        proc.send_signal(signal.SIGINT)  # `ray start --block` stops its processes on SIGINT
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _postgres_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@contextlib.contextmanager
def postgres_server(password: str, user: str = "rediprune") -> Iterator[dict[str, str]]:
    """A throw-away PostgreSQL cluster on 127.0.0.1 with a password-protected ``user``.

    Yields ``url`` (no password: the driver reads it from ``pgpass``, libpq's usual mechanism) and
    ``pgpass`` (the file, mode 0600). PostgreSQL refuses to run as root, so as root the server runs as
    Debian's ``postgres`` account.
    """
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")
    as_root = os.geteuid() == 0
    work = Path(tempfile.mkdtemp(prefix="rediprune-pg-"))
    data, sockets = work / "data", work / "sockets"
    sockets.mkdir()
    pwfile = work / "pwfile"
    pwfile.write_text(password + "\n")
    prefix: list[str] = []
    if as_root:
        account = pwd.getpwnam("postgres")
        for path in (work, sockets, pwfile):
            os.chown(path, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", user, f"--pwfile={pwfile}",
                    "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"], check=True, capture_output=True)
    pwfile.unlink()
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(work / "server.log"),
                    "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True)
    pgpass = Path(tempfile.mkdtemp(prefix="rediprune-pgpass-")) / ".pgpass"
    pgpass.write_text(f"127.0.0.1:{port}:*:{user}:{password}\n")
    pgpass.chmod(0o600)
    try:
        yield {"url": f"postgresql://{user}@127.0.0.1:{port}/postgres", "pgpass": str(pgpass)}
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(pgpass.parent, ignore_errors=True)
