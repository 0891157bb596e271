"""One Optuna study shared by any number of sweep drivers (processes or cluster nodes) through one RDB.

Usage (the Pareto search does this)::

    shared = SharedStudy.open(url, "pareto-3f9a", sampler, heartbeat_interval=10, grace_period=30,
                              max_retry=3, own_dir=sweep_dir)
    shared.reap()                                  # trials of dead drivers: FAIL, asked again
    trial = shared.ask(n_trials)                   # None when the study-wide budget is taken
    with shared.beating():                         # heartbeats for every trial this driver runs
        ...
    shared.tell(trial, values) / shared.fail(trial, error)

Optuna's own mechanism does the coordination (its documented pattern for distributed search): the storage
is an ``RDBStorage`` with ``heartbeat_interval``/``grace_period`` and ``RetryHeartbeatStaleTrialCallback`` as its
``heartbeat_stale_trial_callback``; ``optuna.storages.fail_stale_trials`` fails a trial only when its heartbeat is
older than the grace period — a live trial of another driver is never touched — and the callback enqueues
its parameters again for whichever driver asks next. Optuna beats hearts only inside ``study.optimize``;
the sweep asks and tells (trials run on Ray workers), so a daemon thread here records them through the
storage's public ``record_heartbeat`` for every trial in flight.

What Optuna has no notion of, written here: the study-wide trial budget. Each driver counts trials that
are complete, genuinely failed, running or waiting anywhere; a trial asked past the budget (two drivers
asking at once) is told PRUNED with user attr ``over_budget`` — the lower trial number wins, so every
driver reaches the same verdict. And a driver that holds its sweep folder's lock knows that RUNNING trials
recorded under that folder belong to a dead predecessor, so a rerun after a kill retries them at once
instead of waiting for the grace period.
"""
from __future__ import annotations

import contextlib
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Sequence

from rediprune.sweep.driver import config_error

CREATE_ATTEMPTS = 5

# Optuna's heartbeat API is documented but still flagged experimental, and it warns that heartbeats need
# Study.optimize: this module beats them itself (see above). Neither is the user's concern.
warnings.filterwarnings("ignore", message=r".*is experimental", module=r"rediprune\.sweep\.study")
warnings.filterwarnings("ignore", message=r"Argument ``(heartbeat_interval|grace_period)`` is an experimental")
warnings.filterwarnings("ignore", message=r"Heartbeat of storage is supposed to be used with Study\.optimize")


@dataclass
class StudyCounts:
    complete: int
    failed: int  # genuinely failed (the trial raised or gave no finite objectives)
    stale: int  # a driver died while it ran; asked again
    running: int  # in flight anywhere (this driver or another)
    over_budget: int


class SharedStudy:
    """An Optuna study behind heartbeat-enabled RDB storage, safe for concurrent drivers."""

    def __init__(self, study: Any, storage: Any, *, own_dir: Path, heartbeat_interval: int,
                 grace_period: int = 30) -> None:
        self.study = study
        self.storage = storage
        self.own_dir = str(Path(own_dir).resolve())
        self.heartbeat_interval = heartbeat_interval
        self.orphan_after = 2 * grace_period  # seconds a trial may stay RUNNING without a job folder
        self._study_id = storage.get_study_id_from_name(study.study_name)
        self._beating: dict[int, int] = {}  # trial number -> trial id, trials this driver runs
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        url: str,
        study_name: str,
        sampler: Any,
        *,
        heartbeat_interval: int,
        grace_period: int,
        max_retry: int,
        own_dir: Path,
        directions: Sequence[str] = ("maximize", "minimize"),
    ) -> "SharedStudy":
        """Create or load the study; a corrupt database or a missing driver is refused in one line."""
        import optuna
        from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

        from sqlalchemy.exc import IntegrityError

        shown = url  # never with a password (rediprune.config.secrets)
        for attempt in range(CREATE_ATTEMPTS):
            try:
                storage = RDBStorage(
                    url,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
                )
                study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                            load_if_exists=True, directions=list(directions))
                break
            except IntegrityError:
                # Two drivers creating Optuna's tables in a new database at the same moment: one wins, the
                # other's CREATE collides with it. The tables exist now; opening again finds them.
                if attempt == CREATE_ATTEMPTS - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))
            except ImportError as exc:
                config_error(f"search.storage={shown}: its database driver is not installed ({exc}); "
                             "for PostgreSQL: pip install 'rediprune-sweep[postgres]'")
            except Exception as exc:  # noqa: BLE001 - SQLAlchemy/Optuna errors all mean: not a usable study DB
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                config_error(f"search.storage={shown}: cannot open it as an Optuna database ({first}); "
                             "move the file away (or name another search.storage) to start a new study")
        return cls(study, storage, own_dir=own_dir, heartbeat_interval=heartbeat_interval, grace_period=grace_period)

    # ------------------------------------------------------------------ counting and reaping
    def _trials(self) -> list[Any]:
        return self.study.get_trials(deepcopy=False)

    def counts(self) -> StudyCounts:
        from optuna.storages import RetryHeartbeatStaleTrialCallback
        from optuna.trial import TrialState

        trials = self._trials()
        retried = {RetryHeartbeatStaleTrialCallback.retried_trial_number(t) for t in trials} - {None}
        failed = [t for t in trials if t.state == TrialState.FAIL]
        return StudyCounts(
            complete=sum(t.state == TrialState.COMPLETE for t in trials),
            failed=sum(t.number not in retried for t in failed),
            stale=sum(t.number in retried for t in failed),
            running=sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials),
            over_budget=sum(t.state == TrialState.PRUNED and bool(t.user_attrs.get("over_budget")) for t in trials),
        )

    def _alive(self, trials: list[Any], below: int | None = None) -> int:
        """Trials that use the budget: complete, genuinely failed or running (numbers < ``below``).

        A WAITING trial is a stale one asked again: the stale one no longer counts and the waiting one
        does not yet, so whoever asks next takes it (``study.ask`` pops waiting trials first)."""
        from optuna.storages import RetryHeartbeatStaleTrialCallback
        from optuna.trial import TrialState

        retried = {RetryHeartbeatStaleTrialCallback.retried_trial_number(t) for t in trials} - {None}
        used = (TrialState.COMPLETE, TrialState.RUNNING)
        return sum(
            (t.state in used or (t.state == TrialState.FAIL and t.number not in retried))
            and (below is None or t.number < below)
            for t in trials
        )

    def _dead(self, trial: Any, now: datetime) -> bool:
        """A RUNNING trial this driver does not run whose driver is known dead without a heartbeat's help:
        its job folder is under ours (the folder lock says its driver died), or it has no job folder
        ``orphan_after`` seconds after it started — its driver died between ``study.ask`` and its first
        heartbeat, a trial Optuna's ``fail_stale_trials`` never finds (it judges heartbeats only), while a
        live driver names the folder within seconds of asking."""
        job_dir = trial.user_attrs.get("job_dir")
        if job_dir is not None:
            return str(job_dir).startswith(self.own_dir + "/")
        return trial.datetime_start is not None and (now - trial.datetime_start).total_seconds() > self.orphan_after

    def reap(self) -> int:
        """Fail (and re-enqueue) trials of dead drivers; returns how many."""
        import optuna
        from optuna.trial import TrialState

        running = {t.number for t in self._trials() if t.state == TrialState.RUNNING}
        optuna.storages.fail_stale_trials(self.study)
        count = sum(t.number in running and t.state == TrialState.FAIL for t in self._trials())
        callback = self.storage.get_heartbeat_stale_trial_callback()
        now = datetime.now()  # Optuna stores trial start times as naive local time
        for t in self._trials():
            if t.state == TrialState.RUNNING and t.number not in self._beating and self._dead(t, now):
                trial_id = self.trial_id(t.number)
                try:
                    self.storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
                except Exception:  # noqa: BLE001 - finished meanwhile
                    continue
                if callback is not None:
                    callback(self.study, self.storage.get_trial(trial_id))
                count += 1
        return count

    def running_elsewhere(self) -> int:
        from optuna.trial import TrialState

        return sum(t.state == TrialState.RUNNING and t.number not in self._beating for t in self._trials())

    # ------------------------------------------------------------------ ask / tell
    def trial_id(self, number: int) -> int:
        """The storage's id of trial ``number`` of this study (Optuna's public storage API)."""
        return self.storage.get_trial_id_from_study_id_trial_number(self._study_id, number)

    def room(self, n_trials: int) -> bool:
        return self._alive(self._trials()) < n_trials

    def ask(self, n_trials: int) -> Any | None:
        """A new (or re-enqueued) trial, heart beating; None when the study-wide budget is taken."""
        from optuna.trial import TrialState

        if not self.room(n_trials):
            return None
        trial = self.study.ask()
        trial_id = self.trial_id(trial.number)
        self.storage.record_heartbeat(trial_id)  # a trial without one is never found stale
        with self._lock:
            self._beating[trial.number] = trial_id
        if self._alive(self._trials(), below=trial.number) >= n_trials:  # another driver asked first
            trial.set_user_attr("over_budget", True)
            self._tell(trial, state=TrialState.PRUNED)
            return None
        return trial

    def _tell(self, trial: Any, values: Any = None, state: Any = None) -> None:
        with self._lock:
            self._beating.pop(trial.number, None)
        # skip_if_finished: a trial another driver failed as dead (asked long ago, no folder yet) stays failed
        self.study.tell(trial, values, state=state, skip_if_finished=True)

    def tell(self, trial: Any, values: Sequence[float]) -> None:
        self._tell(trial, list(values))

    def fail(self, trial: Any, error: str) -> None:
        from optuna.trial import TrialState

        trial.set_user_attr("error", error[:500])
        self._tell(trial, state=TrialState.FAIL)

    @contextlib.contextmanager
    def beating(self) -> Iterator[None]:
        """Record a heartbeat for every trial this driver runs, every ``heartbeat_interval`` seconds."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat_interval):
                with self._lock:
                    ids = list(self._beating.values())
                for trial_id in ids:
                    with contextlib.suppress(Exception):  # told meanwhile, or a transient DB error
                        self.storage.record_heartbeat(trial_id)

        thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)


__all__ = ["SharedStudy", "StudyCounts"]
