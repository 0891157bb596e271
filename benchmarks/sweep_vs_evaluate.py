"""The nine-trial sweep against nine separate ``src/evaluate.py`` runs of the same settings.

Usage::

    python benchmarks/sweep_vs_evaluate.py                 # embedded tiny default, about 2 minutes on 2 CPU cores
    python benchmarks/sweep_vs_evaluate.py --workers 1     # one resident worker

A: ``python src/sweep.py -m ratio=0.05,0.1,0.15 alpha=0,0.5,1`` (local Ray, resident workers, feature
cache starting empty). B: the bash-loop alternative, one process per setting, each importing the stack
and loading the model. Both use W&B off (``evaluate.py`` does not track) and write under
``outputs/benchmarks/sweep_vs_evaluate/``. Prints wall times, the speed-up, model loads and cache hits,
and checks that every setting's metric and TFLOPs agree between A and B (the resident model and cached
features must not change results).
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from rediprune.reports.results import read_rows

REPO = Path(__file__).resolve().parents[1]
RATIOS = ("0.05", "0.1", "0.15")
ALPHAS = ("0", "0.5", "1")


def run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="resident Ray workers of the sweep")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmarks" / "sweep_vs_evaluate")
    args = parser.parse_args()
    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    common = [f"hf_home={out / 'hf_home'}", "wandb=disabled"]

    # warm-up: one evaluate.py run so both sides start with the same OS file cache and HF dataset cache
    run([sys.executable, "src/evaluate.py", f"hydra.run.dir={out / 'warmup'}", f"cache_dir={out / 'cache_warm'}",
         *common])

    sweep_dir = out / "sweep"
    t_sweep = run([sys.executable, "src/sweep.py", "-m", f"ratio={','.join(RATIOS)}", f"alpha={','.join(ALPHAS)}",
                   f"launch.num_workers={args.workers}", f"hydra.sweep.dir={sweep_dir}", f"cache_dir={out / 'cache'}",
                   *common])
    summary = json.loads((sweep_dir / "summary.json").read_text())
    sweep_rows = {(r["ratio"], r["alpha"]): r for r in read_rows(sweep_dir / "results.jsonl")}

    t_separate = 0.0
    separate_rows = {}
    for ratio in RATIOS:
        for alpha in ALPHAS:
            folder = out / "separate" / f"r{ratio}_a{alpha}"
            t_separate += run([sys.executable, "src/evaluate.py", f"ratio={ratio}", f"alpha={alpha}",
                               f"hydra.run.dir={folder}", f"cache_dir={out / 'cache_separate'}", *common])
            separate_rows[(float(ratio), float(alpha))] = json.loads((folder / "metrics.json").read_text())

    same = all(
        sweep_rows[key]["primary_metric"] == row["primary_metric"] and sweep_rows[key]["tflops"] == row["tflops"]
        for key, row in separate_rows.items()
    )
    print(f"settings: ratio in {RATIOS} x alpha in {ALPHAS} = 9 trials, embedded tiny default, 2 CPU cores")
    print(f"A sweep (1 process, local Ray, {summary['workers']} resident workers): {t_sweep:6.1f} s  "
          f"model loads {summary['model_loads']}, feature-cache hits {summary['cache_hits']} "
          f"(misses {summary['cache_misses']})")
    print(f"B nine src/evaluate.py runs (one process each):      {t_separate:6.1f} s  model loads 9, "
          f"feature-cache hits 0")
    print(f"speed-up B/A: {t_separate / t_sweep:.2f}x   metrics identical (primary_metric, tflops): {same}")


if __name__ == "__main__":
    main()
