"""Benchmark: a sweep whose settings keep the same tokens, with answer reuse on and off.

Usage::

    python benchmarks/answer_reuse.py                          # the config's default: the demo image task
    python benchmarks/answer_reuse.py --backbone tiny_llava --dataset tiny_image   # seeded tiny, no weights

The grid is M = 8,16,32,64 × β = 2,3 at τ = 0 (8 trials): under the reference pre-filter τ ≤ 0 ignores M
and β, so every trial keeps the same tokens for a sample and, with ``search.reuse_answers=true``, only
the first trial generates. Both sweeps run on one resident worker, W&B off, no timing or FLOP passes
(those always run the model), under ``outputs/benchmarks/answer_reuse/``. Prints each sweep's wall time,
the summed evaluation seconds of its trials, the answers generated and reused, the ratios off ÷ on,
and checks that both sweeps give the same metric, TFLOPs and answers per trial.
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
GRID = ("tau=0", "M=8,16,32,64", "beta=2,3")


def sweep(folder: Path, cache: Path, extra: list[str]) -> tuple[float, list[dict]]:
    cmd = [sys.executable, "src/sweep.py", "-m", *GRID, "launch.num_workers=1", "wandb=disabled",
           "measure.timing_samples=0", "measure.flops_samples=0", f"hydra.sweep.dir={folder}",
           f"cache_dir={cache}", *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"sweep failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}")
    rows = sorted(read_rows(folder / "results.jsonl"), key=lambda r: (r["M"], r["beta"]))
    for row in rows:
        lines = (folder / str(row["trial"]) / "samples.jsonl").read_text().splitlines()
        row["answers"] = [json.loads(line)["filtered_resps"] for line in lines]
    return wall, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default=None, help="dataset group option (default: the config's)")
    parser.add_argument("--backbone", default=None, help="backbone group option (default: the config's)")
    args = parser.parse_args()
    extra = [f"{k}={v}" for k, v in (("dataset", args.dataset), ("backbone", args.backbone)) if v]
    root = REPO / "outputs" / "benchmarks" / "answer_reuse"
    shutil.rmtree(root, ignore_errors=True)
    cache = root / "cache"
    # warm the feature cache with one trial, so neither sweep pays the vision tower alone
    sweep(root / "warm", cache, extra + ["search.reuse_answers=false", "M=8", "beta=2"])
    wall_on, on = sweep(root / "on", cache, extra)
    wall_off, off = sweep(root / "off", cache, extra + ["search.reuse_answers=false"])
    for a, b in zip(on, off):
        same = (a["primary_metric"], a["tflops"], a["answers"]) == (b["primary_metric"], b["tflops"], b["answers"])
        if not same:
            sys.exit(f"reuse changed a result at M={a['M']} beta={a['beta']}")
    eval_on, eval_off = (sum(r["eval_seconds"] for r in rows) for rows in (on, off))
    generated = sum(r["answers_generated"] for r in on)
    reused = sum(r["answers_reused"] for r in on)
    per_trial = on[0]["samples"]
    print(f"grid {' '.join(GRID)}: {len(on)} trials × {per_trial} samples, 1 worker, identical results")
    print(f"reuse on : wall {wall_on:6.1f} s, evaluation {eval_on:6.1f} s, answers generated {generated}, reused {reused}")
    print(f"reuse off: wall {wall_off:6.1f} s, evaluation {eval_off:6.1f} s, answers generated {len(off) * per_trial}")
    print(f"off ÷ on: wall {wall_off / wall_on:.2f}×, evaluation {eval_off / eval_on:.2f}×; "
          f"generation on = {generated / per_trial:.2f} trial(s)' worth (target: about one)")


if __name__ == "__main__":
    main()
