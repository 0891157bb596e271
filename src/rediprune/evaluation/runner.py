"""One pruned evaluation: a RunConfig in, a flat metrics dict out.

Usage::

    from rediprune.config import load
    from rediprune.evaluation import load_model, run_evaluation

    run = load(cfg)                                 # checked RunConfig
    adapter = load_model(run)                       # optional: keep it loaded across runs (sweep workers)
    metrics = run_evaluation(run, adapter=adapter, output_dir=Path("outputs/x"))
    metrics["primary_metric"], metrics["tflops"], metrics["e2e_ms"]

Steps: point HF_HOME at ``run.hf_home``; find the task (before any model loads, so a wrong task name
fails at once); configure the adapter for this run's pruner and hyperparameters (no reload); run the task
through lmms-eval with the registered ``rediprune`` model; then time and count FLOPs on a few of the
evaluated prompts. See ``metrics.py`` and ``efficiency.py`` for what each number means.

HF_HOME is the one environment variable this project sets. lmms-eval and ``datasets`` read it, not a
parameter: lmms-eval puts its dataset cache (``$HF_HOME/datasets``, created even for local data) and its
video folders there, and the video tasks' ``doc_to_visual`` builds file paths from it. It is derived from
the config (``hf_home``, default ``outputs/hf_home``) so a run never writes into ``~/.cache``, and it is
not a way to configure the project. A hub cache that already holds model weights is used by pointing
``hf_home`` at it.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from rediprune.config import RunConfig
from rediprune.pruning.hyperparameters import values_of


class ConfigError(ValueError):
    """A config value that only the task index or the loaded model can check (a wrong task name, dims)."""


TASKS_DIR = Path(__file__).resolve().parent / "tasks"  # bundled lmms-eval tasks (include_path: bundled)
# The numbers run_evaluation returns besides the task's ``metric/<name>`` scores and the ``identity``
# columns: what a sweep may optimise or plot (search.objective, search.cost). Their meanings are in
# metrics.py and efficiency.py; tests/test_evaluation_bridge.py checks this list against a real evaluation.
OUTPUTS = (
    "primary_metric", "samples", "errors", "frames_mean", "visual_tokens_per_frame_before",
    "visual_tokens_per_frame_after", "visual_tokens_before", "visual_tokens_after", "text_tokens_mean",
    "selection_ms_mean", "tflops", "tflops_full", "tflops_ratio", "eval_seconds", "prefill_ms", "e2e_ms",
    "selection_ms", "peak_mem_mb", "timing_samples", "measured_tflops", "measured_tflops_lm_head",
    "measured_tflops_total", "measured_tflops_true", "measured_tflops_paper", "measured_seq_len",
    "measured_vs_true", "flops_samples", "measure_seconds", "wall_seconds",
)


def set_hf_home(run: RunConfig) -> Path:
    """Point HF_HOME at ``run.hf_home`` (absolute, created) before lmms-eval or datasets read it."""
    path = Path(run.hf_home).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["HF_HOME"] = str(path)
    # lmms-eval 0.7.3 memoises the datasets cache folder it derives from HF_HOME (lru_cache) on first use
    task_module = sys.modules.get("lmms_eval.api.task")
    resolve = getattr(task_module, "_resolve_hf_datasets_cache_dir", None)
    if resolve is not None and hasattr(resolve, "cache_clear"):
        resolve.cache_clear()
    return path


def include_path(run: RunConfig) -> str | None:
    """The folder of local task YAMLs for ``run.dataset`` (None: lmms-eval's built-in tasks)."""
    value = run.dataset.include_path
    if value is None:
        return None
    if value == "bundled":
        return str(TASKS_DIR)
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"dataset.include_path={value!r} is not allowed; expected 'bundled', null or a folder")
    return str(path)


_MANAGERS: dict[str | None, Any] = {}  # indexing lmms-eval's ~2000 built-in tasks takes seconds: once per process


def task_manager(run: RunConfig) -> Any:
    """lmms-eval TaskManager that knows ``run.dataset.task``; an unknown task raises ConfigError at once."""
    import lmms_eval.models  # noqa: F401 - sets lmms-eval's log level (WARNING) before the task index logs
    from lmms_eval.tasks import TaskManager

    folder = include_path(run)
    if folder not in _MANAGERS:
        _MANAGERS[folder] = TaskManager(
            "WARNING", include_path=folder, include_defaults=folder is None, model_name="rediprune"
        )
    manager = _MANAGERS[folder]
    if run.dataset.task not in manager.all_tasks:
        import difflib

        close = difflib.get_close_matches(run.dataset.task, manager.all_tasks, n=5)
        where = f"tasks in {folder}" if folder else "lmms-eval's tasks"
        hint = f"; close: {', '.join(close)}" if close else f"; available: {', '.join(manager.all_tasks[:20])}"
        raise ConfigError(f"dataset.task={run.dataset.task!r} is not allowed; expected one of {where}{hint}")
    return manager


def identity(run: RunConfig) -> dict[str, Any]:
    """The columns that say which evaluation a result row is: group choices, hyperparameters, seed."""
    return {"backbone": run.backbone.name, "dataset": run.dataset.name, "pruner": run.pruner.name.value,
            "query": run.query.strategy.value, "query_source": run.query.source.value, **values_of(run),
            "seed": run.seed}


def pruning_settings(run: RunConfig) -> Any:
    """This run's pruner, hyperparameters and query strategy as the adapters take them.

    The hyperparameters (rediprune.pruning.hyperparameters) are top-level fields of the RunConfig, so the run
    itself serves as ``PruningSettings.from_configs``'s hyperparameter object.
    """
    from rediprune.models import PruningSettings

    return PruningSettings.from_configs(run.pruner, run, run.query)


def load_model(run: RunConfig) -> Any:
    """Load the adapter of ``run.backbone`` and check the backbone config's LLM dims against the model."""
    from rediprune.evaluation.efficiency import text_dims
    from rediprune.models import load_adapter

    adapter = load_adapter(run.backbone)
    model = getattr(adapter, "model", None)
    if model is not None:
        dims = text_dims(model)
        for key in ("layers", "hidden", "ffn"):
            if dims[key] != getattr(run.backbone, key):
                raise ConfigError(
                    f"backbone.{key}={getattr(run.backbone, key)!r} is not allowed for {run.backbone.checkpoint}; "
                    f"expected {dims[key]} (the loaded model's value; the TFLOPs model uses it)"
                )
    return adapter


def run_evaluation(
    run: RunConfig,
    *,
    adapter: Any = None,
    output_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Evaluate one config and return its flat, JSON-serialisable metrics.

    ``adapter``: a loaded adapter of ``run.backbone`` to reuse (it is re-configured for this run's pruner
    and hyperparameters); None loads one. ``output_dir``: where to write ``samples.jsonl`` (per-sample
    answers, scores, token counts and errors) and ``lmms_eval_results.json``.
    """
    t_start = time.perf_counter()
    set_hf_home(run)
    manager = task_manager(run)  # fails on a wrong task name before a model loads
    from lmms_eval.evaluator import simple_evaluate

    from rediprune.evaluation.efficiency import measure_flops, measure_timing
    from rediprune.evaluation.lmms_model import EvalSession, open_session, register
    from rediprune.evaluation.metrics import analytic_tflops, task_metrics, token_metrics

    settings = pruning_settings(run)
    if adapter is None:
        t0 = time.perf_counter()
        adapter = load_model(run)
        log(f"loaded {run.backbone.name} ({run.backbone.checkpoint}) in {time.perf_counter() - t0:.1f} s")
    adapter.configure(settings)
    register()

    measure = run.measure
    session = EvalSession(
        adapter,
        modality=run.dataset.modality,
        num_frames=run.dataset.num_frames or run.backbone.num_frames,
        batch_size=run.dataset.batch_size,
        on_error=run.dataset.on_error.value,
        max_new_tokens=run.dataset.max_new_tokens,
        capture=max(measure.timing_samples, measure.flops_samples),
        log=log,
    )
    t0 = time.perf_counter()
    with open_session(session) as key:
        results = simple_evaluate(
            model="rediprune",
            model_args=f"session={key}",
            tasks=[run.dataset.task],
            task_manager=manager,
            limit=run.dataset.limit,
            batch_size=run.dataset.batch_size,
            bootstrap_iters=0,
            log_samples=True,
            verbosity="WARNING",
            random_seed=run.seed,
            numpy_random_seed=run.seed,
            torch_random_seed=run.seed,
            fewshot_random_seed=run.seed,
            process_docs_parallel=1,
        )
    eval_seconds = time.perf_counter() - t0
    if results is None:  # pragma: no cover - only on non-zero ranks
        raise RuntimeError("lmms-eval returned no results")

    metrics = identity(run)
    metrics.update(task_metrics(results, run.dataset.primary_metric))
    tokens = token_metrics(session.records)
    metrics.update(tokens)
    metrics.update(analytic_tflops(run.backbone, tokens))
    metrics["eval_seconds"] = eval_seconds
    t0 = time.perf_counter()
    metrics.update(
        measure_timing(adapter, session.captured, samples=measure.timing_samples, warmup=measure.warmup,
                       max_new_tokens=measure.max_new_tokens, modality=run.dataset.modality)
    )
    metrics.update(
        measure_flops(adapter, session.captured, samples=measure.flops_samples, backbone=run.backbone,
                      modality=run.dataset.modality)
    )
    metrics["measure_seconds"] = time.perf_counter() - t0
    metrics["wall_seconds"] = time.perf_counter() - t_start
    if session.errors:
        metrics["error_samples"] = json.dumps(session.errors[:20])
    if output_dir is not None:
        write_outputs(Path(output_dir), results, session)
    log(
        f"{run.dataset.name}: primary_metric={metrics['primary_metric']:.4g} over {metrics['samples']} samples "
        f"({metrics['errors']} errors), {metrics['visual_tokens_per_frame_before']} -> "
        f"{metrics['visual_tokens_per_frame_after']} visual tokens/frame, tflops={metrics['tflops']}"
    )
    return metrics


def write_outputs(folder: Path, results: dict[str, Any], session: Any) -> None:
    """``samples.jsonl`` (one line per evaluated doc) and ``lmms_eval_results.json`` (its aggregate view)."""
    folder.mkdir(parents=True, exist_ok=True)
    records = {(r.task, r.doc_id): r for r in session.records}
    with open(folder / "samples.jsonl", "w") as f:
        for task, samples in results.get("samples", {}).items():
            for sample in samples:
                row = {k: v for k, v in sample.items() if k not in ("doc", "arguments", "resps")}
                record = records.get((task, sample.get("doc_id")))
                if record is not None:
                    row["stats"] = asdict(record)
                f.write(json.dumps({"task": task, **row}, default=str) + "\n")
    aggregate = {k: v for k, v in results.items() if k != "samples"}
    (folder / "lmms_eval_results.json").write_text(json.dumps(aggregate, indent=2, default=str))


__all__ = ["ConfigError", "TASKS_DIR", "load_model", "pruning_settings", "run_evaluation", "set_hf_home", "task_manager"]
