"""Weights & Biases: one run per trial and a sweep-level run that is the Pareto dashboard.

Usage::

    tracker = Tracker(run_cfg.wandb, sweep="grid-3f9a1c2e", folder=sweep_dir)   # checks the mode now
    tracker.trial(row, config, on_logged=store.mark_logged)   # queued; logged by a background thread
    tracker.sweep(rows, front, objective="primary_metric", cost="tflops", files=[png, html], tables=paper.wandb)
    tracker.close()

Mode ``auto`` is online when W&B finds an API key (``WANDB_API_KEY``, ``~/.netrc`` written by
``wandb login``, W&B settings) and offline otherwise — ``wandb.login(prompt=False)`` never prompts and
never prints the key; ``online`` without a key is an error before any trial runs; ``disabled`` does
nothing. Runs live under ``<sweep folder>/wandb``. A trial's run id is derived from the sweep and the
config hash and it is logged by the driver after the result is recorded — once, even when a worker died
and Ray re-ran the trial. If an online ``init`` fails (no network), the tracker warns once and goes on
offline; tracking never fails a sweep.

A W&B run is part of the trial's record: ``on_logged(row, run_id)`` fires once its run is finished, the
store keeps that, and a rerun logs again every finished trial whose run never finished (the driver was
killed between storing the row and closing its run). Offline, logging a run again first removes the
run's earlier ``offline-run-*-<id>`` folders (unfinished by definition), and the sweep run replaces its
predecessor the same way, so ``wandb sync <sweep>/wandb/offline-run-*`` uploads one run per trial plus
one sweep run however often the sweep was resumed. Online, the same id resumes the same run.
"""
from __future__ import annotations

import logging
import math
import queue
import shutil
import threading
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from rediprune.sweep.naming import wandb_id

log = logging.getLogger(__name__)


class TrackingError(ValueError):
    """A W&B setting that cannot work (online without a key)."""


def resolve_mode(mode: str) -> str:
    """``auto`` → ``online`` if an API key is configured, else ``offline``; other modes unchanged."""
    if mode in ("offline", "disabled"):
        return mode
    import wandb

    # silent: otherwise login() prints a greeting that asks the server for the user name (5 s offline)
    wandb.setup(wandb.Settings(silent=True))
    has_key = bool(wandb.login(prompt=False, verify=False))
    if mode == "online" and not has_key:
        raise TrackingError(
            "wandb.mode='online' is not allowed without an API key; expected `wandb login` first, "
            "or wandb=offline / wandb=auto / wandb=disabled"
        )
    return "online" if has_key else "offline"


def _scalar(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Tracker:
    """Logs trial runs on a background thread and the sweep run at the end."""

    def __init__(self, cfg: Any, *, sweep: str, folder: Path) -> None:
        self.cfg = cfg
        self.sweep_name = sweep
        self.folder = Path(folder)
        self.mode = resolve_mode(getattr(cfg.mode, "value", cfg.mode))
        self.logged = 0
        self._queue: queue.Queue[tuple[dict[str, Any], dict[str, Any], Optional[Callable[..., None]]] | None] = (
            queue.Queue())
        self._thread: threading.Thread | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.mode != "disabled"

    def _settings(self) -> Any:
        import wandb

        return wandb.Settings(
            console="off",  # the trial log is in its folder; do not capture the driver's console
            silent=True,
            x_disable_stats=True,  # driver-side runs: system stats would describe the driver, not the trial
            disable_git=True,
            save_code=False,
            init_timeout=float(self.cfg.init_timeout),
        )

    def _forget_offline(self, run_id: str) -> None:
        """Remove earlier offline folders of ``run_id`` (a run logged again replaces them)."""
        if self.mode != "offline":
            return
        for old in (self.folder / "wandb").glob(f"offline-run-*-{run_id}"):
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)

    def _init(self, **kwargs: Any) -> Any:
        import wandb

        self.folder.mkdir(parents=True, exist_ok=True)
        self._forget_offline(kwargs["id"])
        common = dict(
            project=self.cfg.project,
            entity=self.cfg.entity,
            group=self.sweep_name,
            tags=list(self.cfg.tags or []),
            dir=str(self.folder),
            reinit="create_new",  # never hand back another (unfinished) run of this process
            settings=self._settings(),
        )
        common.update(kwargs)
        try:
            return wandb.init(mode=self.mode, resume="allow" if self.mode == "online" else None, **common)
        except Exception as exc:  # noqa: BLE001 - network, auth or service trouble: keep the sweep going
            if self.mode != "online":
                raise
            if not self._warned:
                log.warning("W&B online init failed (%s); logging offline under %s", type(exc).__name__, self.folder)
                self._warned = True
            self.mode = "offline"
            wandb.teardown()  # the failed run still holds its id in this process
            common["settings"] = self._settings()
            return wandb.init(mode="offline", **common)

    # ------------------------------------------------------------------ trials
    def trial(self, row: dict[str, Any], config: dict[str, Any],
              on_logged: Optional[Callable[[dict[str, Any], str], None]] = None) -> None:
        """Queue one finished trial (row: its metrics and bookkeeping; config: its resolved config);
        ``on_logged(row, run_id)`` is called from the logging thread once its run is finished."""
        if not self.enabled:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name="wandb-trials", daemon=True)
            self._thread.start()
        self._queue.put((row, config, on_logged))

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._log_trial(*item)
            except Exception as exc:  # noqa: BLE001 - tracking must not fail the sweep
                log.warning("W&B: trial %s not logged: %s", item[0].get("trial"), exc)

    def _log_trial(self, row: dict[str, Any], config: dict[str, Any],
                   on_logged: Optional[Callable[[dict[str, Any], str], None]]) -> None:
        run_id = wandb_id(self.sweep_name, row["hash"])
        run = self._init(
            id=run_id,
            name=f"{self.sweep_name}-{row.get('trial')}",
            job_type="trial",
            config={**config, "trial": row.get("trial"), "config_hash": row["hash"], "sweep": self.sweep_name},
        )
        with run:
            scalars = {k: v for k, v in row.items() if _scalar(v)}
            run.log(scalars)
            run.summary.update({k: v for k, v in row.items() if v is not None and not isinstance(v, (dict, list))})
        self.logged += 1
        if on_logged is not None:
            on_logged(row, run_id)

    def flush(self) -> None:
        """Wait until every queued trial run is logged."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    # ------------------------------------------------------------------ sweep
    def sweep(
        self,
        rows: Sequence[dict[str, Any]],
        front: Sequence[dict[str, Any]],
        *,
        objective: str,
        cost: str,
        config: dict[str, Any],
        summary: dict[str, Any],
        files: Sequence[Path] = (),
        tables: dict[str, Any] | None = None,
    ) -> None:
        """The sweep-level run: tables of all trials and of the Pareto set, the accuracy-vs-cost scatter."""
        self.flush()
        if not self.enabled:
            return
        import wandb

        try:
            run = self._init(
                id=wandb_id(self.sweep_name, "", suffix="sweep"),
                name=f"{self.sweep_name}-sweep",
                job_type="sweep",
                config=config,
            )
            with run:
                trials = _table(rows)
                pareto = _table(front, columns=trials.columns)
                data: dict[str, Any] = {"trials": trials, "pareto": pareto}
                if cost in trials.columns and objective in trials.columns:
                    data["pareto_scatter"] = wandb.plot.scatter(
                        trials, cost, objective, title=f"{objective} vs {cost} ({self.sweep_name})"
                    )
                for path in files:
                    if path.suffix == ".png" and path.exists():
                        data["pareto_png"] = wandb.Image(str(path))
                    elif path.suffix == ".html" and path.exists():
                        data["pareto_html"] = wandb.Html(str(path))
                data.update(tables or {})  # the paper-table layouts (rediprune.reports)
                run.log(data)
                run.summary.update({k: v for k, v in summary.items() if v is not None})
        except Exception as exc:  # noqa: BLE001
            log.warning("W&B: sweep run not logged: %s", exc)

    def close(self) -> None:
        self.flush()


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> Any:
    """A wandb.Table of the rows' scalar and string columns (first-seen order)."""
    import wandb

    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            for key, value in row.items():
                if value is None or isinstance(value, (int, float, str, bool)):
                    seen.setdefault(key, None)
        columns = list(seen)
    data = []
    for row in rows:
        values = []
        for key in columns:
            value = row.get(key)
            values.append(value if value is None or isinstance(value, (int, float, str, bool)) else str(value))
        data.append(values)
    return wandb.Table(columns=list(columns), data=data, allow_mixed_types=True)


__all__ = ["Tracker", "TrackingError", "resolve_mode"]
