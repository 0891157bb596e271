"""One pruned evaluation from the command line.

Usage::

    python src/evaluate.py                                   # embedded default: tiny LLaVA, tiny_image task
    python src/evaluate.py backbone=tiny_video_llava dataset=tiny_video pruner=divprune ratio=0.25
    python src/evaluate.py backbone=llava_1_5_7b dataset=pope ratio=0.1 alpha=0.5 dataset.limit=100

Prints the metrics and writes ``metrics.json``, ``config.yaml`` (the resolved config), ``samples.jsonl``
and ``lmms_eval_results.json`` into the Hydra run folder (``outputs/runs/<date>/<time>``; set
``hydra.run.dir=…`` to choose). The whole config is checked before any model loads: a bad value prints
one line naming the parameter, the value and what is allowed, and exits with status 2.
"""
from __future__ import annotations

import sys
from pathlib import Path

# Python puts this folder first on sys.path; it holds evaluate.py, whose name would shadow Hugging Face's
# `evaluate` package (imported by lmms-eval's metrics) here and in Ray workers. Searched last instead.
if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
    sys.path.append(sys.path.pop(0))

import json

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rediprune.config import load, register_configs
from rediprune.config.command_line import fail

register_configs()


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    try:
        run = load(cfg)
    except (ValueError, OmegaConfBaseException) as exc:  # range checks of __post_init__, OmegaConf types
        fail(str(exc).splitlines()[0])
    out = Path(HydraConfig.get().runtime.output_dir)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(run)))

    from rediprune.evaluation import ConfigError, run_evaluation

    try:
        metrics = run_evaluation(run, output_dir=out, log=lambda m: print(m, flush=True))
    except ConfigError as exc:  # a value only the task index or the loaded model can check
        fail(str(exc))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    print(f"wrote {out / 'metrics.json'}")
    return float(metrics["primary_metric"])


if __name__ == "__main__":
    from rediprune.config.command_line import check_command_line

    check_command_line(sys.argv[1:], app="evaluate", config_dir=Path(__file__).resolve().parents[1] / "conf")
    main()
