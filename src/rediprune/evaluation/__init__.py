"""Pruned evaluation through lmms-eval, with the paper's efficiency metrics.

Usage::

    from rediprune.evaluation import load_model, run_evaluation

    adapter = load_model(run)                              # optional; kept loaded by sweep workers
    metrics = run_evaluation(run, adapter=adapter)         # {"primary_metric": …, "tflops": …, …}

``lmms_model`` is the lmms-eval model ``rediprune`` (registered in ``MODEL_REGISTRY_V2``), ``metrics``
the task scores, token counts and the paper's TFLOPs, ``efficiency`` latency, memory and counted FLOPs,
``cache`` the feature and answer caches a process that keeps a model loaded plugs into its adapter,
``tasks/`` the bundled offline tasks (``rediprune_tiny_image``, ``rediprune_tiny_video``), drawn by
``tiny_data``. Importing this package is cheap; lmms-eval is imported when an evaluation starts.
"""
from rediprune.evaluation.runner import OUTPUTS, ConfigError, TASKS_DIR, identity, load_model, pruning_settings, run_evaluation

__all__ = ["OUTPUTS", "ConfigError", "TASKS_DIR", "identity", "load_model", "pruning_settings", "run_evaluation"]
