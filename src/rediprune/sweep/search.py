"""Optuna Pareto search through the sweep driver: ask a trial whenever a worker is free, tell on return.

Usage (``python src/sweep.py -m search=pareto``; the ``rediprune`` sweeper calls this)::

    result = optimise(driver, ["search=pareto", "query=average,exponential"], config_loader)

Two objectives: maximise ``search.objective`` (the task metric), minimise ``search.cost`` (TFLOPs).
The space is ``search.space`` from ``conf/search/pareto.yaml``; a value list on the command line
narrows one dimension to those choices (``query=average,exponential``), ``interval(0.05,0.3)`` sets a
range, a single value fixes it. Samplers: NSGA-II, or TPE with ``constant_liar`` (trials run
concurrently). The study lives in an RDB storage — ``sqlite:///<sweep folder>/optuna.db`` unless
``search.storage`` names another SQLAlchemy URL — under ``search.study_name`` (default: the sweep
name), so rerunning the command resumes it: numbering continues and the study is topped up to
``search.n_trials`` finished trials. Several drivers (processes, or machines sharing a PostgreSQL URL)
may work on one study at once: ``SharedStudy`` keeps the budget study-wide, beats hearts for the trials
each driver runs, and re-asks the trials of a driver that died (Optuna's heartbeat and
``RetryHeartbeatStaleTrialCallback``). A failed trial is told FAIL and the search goes on. A point already
evaluated in this sweep (NSGA-II repeats points) reuses the stored result.
"""
from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

from rediprune.pruning.hyperparameters import SWEPT, hyperparameter
from rediprune.reports.pareto import finite_point
from rediprune.sweep.config import ParamSpace, check_space
from rediprune.sweep.driver import config_error
from rediprune.sweep.study import SharedStudy

log = logging.getLogger(__name__)


@dataclass
class SearchResult:
    study_name: str
    storage: str  # password hidden
    complete: int
    failed: int
    exit_code: int


def storage_url(search: Any, sweep_dir: Any) -> str:
    return search.storage or f"sqlite:///{sweep_dir}/optuna.db"


def make_sampler(search: Any, seed: int) -> Any:
    import optuna

    name = getattr(search.sampler, "value", search.sampler)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=search.population_size, seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, constant_liar=True, n_startup_trials=search.n_startup_trials
        )
    raise ValueError(f"search.sampler={name!r} is not allowed; expected nsga2 or tpe")


def narrow_space(space: dict[str, Any], arguments: Sequence[str], config_loader: Any) -> tuple[dict[str, Any], list[str]]:
    """Apply the command's overrides to the space; return (space, overrides every trial gets)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import IntervalSweep, RangeSweep

    space = {k: (v if isinstance(v, ParamSpace) else ParamSpace(**v)) for k, v in space.items()}
    base: list[str] = []
    parser = OverridesParser.create(config_loader=config_loader)
    for override in parser.parse_overrides(list(arguments)):
        key = override.get_key_element()
        if not override.is_sweep_override():
            if key in space:
                del space[key]  # fixed by the command line
            base.append(override.input_line)
            continue
        if key not in SWEPT:
            config_error(f"{override.input_line}: search=pareto searches only {', '.join(SWEPT)}; "
                         f"expected a single value for {key} (or search=grid for a grid over it)")
        value = override.value()
        if isinstance(value, IntervalSweep):
            space[key] = ParamSpace(low=value.start, high=value.end)
        elif isinstance(value, RangeSweep):
            space[key] = ParamSpace(choices=list(override.sweep_iterator()))
        else:
            space[key] = ParamSpace(choices=[None if v == "null" else v for v in override.sweep_iterator()])
    for name, spec in space.items():
        try:
            check_space(name, spec)
        except ValueError as exc:
            config_error(str(exc))
    if not space:
        config_error("search.space: every dimension is fixed on the command line; expected at least one to search")
    return space, base


def suggest(trial: Any, space: dict[str, ParamSpace]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if spec.choices is not None:
            params[name] = trial.suggest_categorical(name, list(spec.choices))
        elif hyperparameter(name).kind is int:
            params[name] = trial.suggest_int(name, int(spec.low), int(spec.high), step=int(spec.step or 1),
                                             log=spec.log)
        else:
            params[name] = trial.suggest_float(name, float(spec.low), float(spec.high), step=spec.step,
                                               log=spec.log)
    return params


def param_overrides(params: dict[str, Any]) -> list[str]:
    """Hydra overrides for one trial's parameters (query is a config group; M may be null)."""
    out = []
    for name, value in params.items():
        if value is None:
            out.append(f"{name}=null")
        elif isinstance(value, float):
            out.append(f"{name}={float(f'{value:.10g}')!r}")  # 0.15000000000000002 → 0.15
        else:
            out.append(f"{name}={value}")
    return out


def optimise(driver: Any, arguments: Sequence[str], config_loader: Any) -> SearchResult:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = driver.run.search
    space, base = narrow_space(dict(search.space), arguments, config_loader)
    driver.open()
    url = storage_url(search, driver.sweep_dir)
    study_name = search.study_name or driver.name
    shown = url  # never with a password (rediprune.config.secrets)
    # A fresh seed per invocation, so a resumed NSGA-II does not replay the generation it already sampled.
    shared = SharedStudy.open(url, study_name, None, heartbeat_interval=search.heartbeat_interval,
                              grace_period=search.grace_period, max_retry=search.max_retry,
                              own_dir=driver.sweep_dir)
    shared.study.sampler = make_sampler(search, seed=search.seed + len(shared.study.trials))
    study = shared.study
    with warnings.catch_warnings():  # experimental since optuna 3.2; the dashboard shows these names
        warnings.simplefilter("ignore")
        study.set_metric_names([search.objective, search.cost])
    study.set_user_attr("objective", search.objective)
    study.set_user_attr("cost", search.cost)

    def tell(trial: Any, row: dict[str, Any]) -> None:
        values = finite_point(row, search.objective, search.cost) if row.get("status") == "ok" else None
        if values is None:
            shared.fail(trial, str(row.get("error", f"no finite {search.objective}/{search.cost}")))
        else:
            shared.tell(trial, values)

    def capacity() -> int:  # trials in flight at once: the workers that exist (or will)
        return len(driver.pool.slots) if driver.pool is not None else driver.run.launch.num_workers

    from rediprune.sweep.inert import inert_space_notes

    run = driver.run
    for line in inert_space_notes(list(space), run.pruner.name, run.pruner.prefilter, run.query.strategy):
        print(line, flush=True)  # a searched dimension that has no effect under the fixed settings
    shared.reap()
    counts = shared.counts()
    if shared.room(search.n_trials):
        driver.workers()  # Ray joined or started before the progress bar draws
    driver.start_progress(max(search.n_trials, counts.complete + counts.failed))
    if driver.progress is not None:
        driver.progress.update(counts.complete + counts.failed)
    in_flight: dict[int, Any] = {}
    waiting_noted = False
    with shared.beating():
        while True:
            while len(in_flight) < capacity():
                trial = shared.ask(search.n_trials)
                if trial is None:
                    break
                params = suggest(trial, space)
                job = driver.prepare(base + param_overrides(params), trial.number)
                trial.set_user_attr("config_hash", job.hash)
                trial.set_user_attr("job_dir", str(driver.job_dir(job)))
                row = driver.finished_row(job)
                if row is not None:  # this point already ran in this sweep: reuse its result
                    driver.skip(job, row)
                    tell(trial, row)
                    continue
                driver.workers().submit(job)
                in_flight[trial.number] = trial
            if in_flight:
                for job, outcome in driver.workers().wait():
                    tell(in_flight.pop(job.num), driver.record(job, outcome))
                continue
            if shared.reap():
                continue  # a dead driver's trials were re-enqueued: ask them
            elsewhere = shared.running_elsewhere()
            if not elsewhere:
                break
            if not waiting_noted:
                print(f"waiting for {elsewhere} trial(s) other drivers of study {study_name!r} are running "
                      f"(a dead driver's trials are asked again after {search.grace_period} s, "
                      f"{2 * search.grace_period} s if it died while asking)", flush=True)
                waiting_noted = True
            time.sleep(min(search.heartbeat_interval, 5))
    counts = shared.counts()
    extra = {"study_name": study_name, "storage": shown, "study_complete": counts.complete,
             "study_failed": counts.failed, "study_stale": counts.stale}
    code = driver.finish(extra)
    print(f"Optuna study {study_name!r}: {counts.complete} complete, {counts.failed} failed"
          + (f", {counts.stale} stale (a driver died; asked again)" if counts.stale else "")
          + f" — optuna-dashboard {shown}", flush=True)
    return SearchResult(study_name=study_name, storage=shown, complete=counts.complete, failed=counts.failed,
                        exit_code=code)


__all__ = ["SearchResult", "make_sampler", "narrow_space", "optimise", "param_overrides", "suggest"]
