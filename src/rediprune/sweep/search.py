"""Optuna Pareto search through the sweep driver: ask a trial whenever a worker is free, tell on return.

Usage (``python src/sweep.py -m search=pareto``; the ``rediprune_optuna`` sweeper calls this)::

    result = optimise(driver, ["search=pareto", "query=average,exponential"], config_loader)

Two objectives: maximise ``search.objective`` (the task metric), minimise ``search.cost`` (TFLOPs).
The space is ``search.space`` from ``conf/search/pareto.yaml``; a value list on the command line
narrows one dimension to those choices (``query=average,exponential``), ``interval(0.05,0.3)`` sets a
range, a single value fixes it. Samplers: NSGA-II, or TPE with ``constant_liar`` (trials run
concurrently). The study lives in an RDB storage — ``sqlite:///<sweep folder>/optuna.db`` unless
``search.storage`` names another SQLAlchemy URL — under ``search.study_name`` (default: the sweep
name), so rerunning the command resumes it: numbering continues, the study is topped up to
``search.n_trials`` finished trials, and trials a killed driver left RUNNING are marked FAIL
(user attr ``interrupted``) and asked again with the same parameters. A failed trial is told FAIL and
the search goes on. A point already evaluated in this sweep (NSGA-II repeats points) reuses the
stored result. One driver per study.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

from rediprune.config.sweep import SPACE_PARAMS, ParamSpace, check_space
from rediprune.sweep.driver import config_error, redact
from rediprune.sweep.pareto import finite_point

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
        if key not in SPACE_PARAMS:
            config_error(f"{override.input_line}: search=pareto searches only {', '.join(SPACE_PARAMS)}; "
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
        elif name == "M":
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
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = driver.run.search
    space, base = narrow_space(dict(search.space), arguments, config_loader)
    driver.open()
    url = storage_url(search, driver.sweep_dir)
    study_name = search.study_name or driver.name
    probe = optuna.create_study(study_name=study_name, storage=url, load_if_exists=True,
                                directions=["maximize", "minimize"])
    # Trials a killed driver left RUNNING: fail them and ask their parameters again.
    retry = []
    for stale in probe.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial = optuna.trial.Trial(probe, stale._trial_id)
        trial.set_user_attr("interrupted", True)
        probe.tell(trial, state=TrialState.FAIL)
        retry.append(stale)
    # A fresh seed per invocation (deterministic from the study's size), so a resumed NSGA-II does not
    # replay the first generation it already sampled.
    sampler = make_sampler(search, seed=search.seed + len(probe.trials))
    study = optuna.load_study(study_name=study_name, storage=url, sampler=sampler)
    with warnings.catch_warnings():  # experimental since optuna 3.2; the dashboard shows these names
        warnings.simplefilter("ignore")
        study.set_metric_names([search.objective, search.cost])
    study.set_user_attr("sweep", driver.name)
    study.set_user_attr("objective", search.objective)
    study.set_user_attr("cost", search.cost)
    for stale in retry:
        study.enqueue_trial(stale.params, user_attrs={"retry_of": stale.number})

    def counted() -> int:
        return sum(
            t.state == TrialState.COMPLETE or (t.state == TrialState.FAIL and not t.user_attrs.get("interrupted"))
            for t in study.get_trials(deepcopy=False)
        )

    def tell(trial: Any, row: dict[str, Any]) -> None:
        values = finite_point(row, search.objective, search.cost) if row.get("status") == "ok" else None
        if values is None:
            trial.set_user_attr("error", str(row.get("error", f"no finite {search.objective}/{search.cost}"))[:500])
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, list(values))

    def capacity() -> int:  # trials in flight at once: the workers that exist (or will)
        return len(driver.pool.slots) if driver.pool is not None else driver.run.launch.num_workers

    done = counted()
    driver.start_progress(max(search.n_trials, done))
    if driver.progress is not None:
        driver.progress.update(done)
    in_flight: dict[int, Any] = {}
    while True:
        while len(in_flight) < capacity() and done + len(in_flight) < search.n_trials:
            trial = study.ask()
            params = suggest(trial, space)
            job = driver.prepare(base + param_overrides(params), trial.number)
            trial.set_user_attr("config_hash", job.hash)
            trial.set_user_attr("job_dir", str(driver.job_dir(job)))
            row = driver.finished_row(job)
            if row is not None:  # this point already ran in this sweep: reuse its result
                driver.skip(job, row)
                tell(trial, row)
                done += 1
                continue
            driver.workers().submit(job)
            in_flight[trial.number] = trial
        if not in_flight:
            break
        for job, outcome in driver.workers().wait():
            tell(in_flight.pop(job.num), driver.record(job, outcome))
            done += 1
    trials = study.get_trials(deepcopy=False)
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    interrupted = sum(t.state == TrialState.FAIL and bool(t.user_attrs.get("interrupted")) for t in trials)
    failed = sum(t.state == TrialState.FAIL for t in trials) - interrupted
    shown = redact(url)
    extra = {"study_name": study_name, "storage": shown, "study_complete": complete, "study_failed": failed,
             "study_interrupted": interrupted}
    code = driver.finish(extra)
    print(f"Optuna study {study_name!r}: {complete} complete, {failed} failed"
          + (f", {interrupted} interrupted (asked again)" if interrupted else "")
          + f" — optuna-dashboard {shown}", flush=True)
    return SearchResult(study_name=study_name, storage=shown, complete=complete, failed=failed, exit_code=code)


__all__ = ["SearchResult", "make_sampler", "narrow_space", "optimise", "param_overrides", "suggest"]
