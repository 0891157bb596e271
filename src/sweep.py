"""The main job: pruned evaluations swept over hyperparameters on resident Ray workers.

Usage::

    python src/sweep.py -m ratio=0.05,0.1,0.15 alpha=0,0.5,1          # 9-trial grid on a local Ray
    python src/sweep.py -m search=pareto search.n_trials=24             # Optuna NSGA-II Pareto search
    python src/sweep.py -m search=pareto search.sampler=tpe query=average,exponential
    python src/sweep.py -m launch=cluster ratio=0.05,0.1 backbone=llava_1_5_7b dataset=pope   # a Ray cluster

A sweep lives in ``outputs/sweeps/<name>`` (name from the command, or ``search.name=…``): one folder per
trial (resolved config, metrics, log, traceback on failure), ``results.jsonl``/``.csv``/``.md``, the
Pareto front as ``pareto.png``/``.html``, ``optuna.db`` for searches, and W&B runs under ``wandb/``.
Rerunning the same command resumes: finished trials are skipped. Exit status: 0 all trials ok, 1 some
failed (the sweep still finished the others), 2 a config value is invalid (nothing ran).

The config is ``conf/sweep.yaml``: the evaluation's ``conf/config.yaml`` plus the sweep's groups
(``search``, ``launch``, ``wandb``). Hydra runs this file's ``main`` once per trial on a resident worker,
with the trial's evaluation config only; the engine is ``rediprune.sweep``.
"""
from __future__ import annotations

import sys
from pathlib import Path

# Python puts this folder first on sys.path; it holds evaluate.py, whose name would shadow Hugging Face's
# `evaluate` package (imported by lmms-eval's metrics) here and in Ray workers. Searched last instead.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.append(sys.path.pop(0))

from typing import Any

import hydra
from omegaconf import DictConfig

from rediprune.sweep.config import register_sweep_configs

register_sweep_configs()


@hydra.main(config_path="../conf", config_name="sweep", version_base="1.3")
def main(cfg: DictConfig) -> dict[str, Any]:
    from rediprune.sweep.trial import run_trial

    return run_trial(cfg)


if __name__ == "__main__":
    from rediprune.config.command_line import check_command_line

    check_command_line(sys.argv[1:], app="sweep", config_dir=Path(__file__).resolve().parents[1] / "conf",
                       config_name="sweep")
    main()
