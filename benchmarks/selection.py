"""Benchmark: batched ReDiPrune selection vs a per-frame loop with the reference's cost vs one Gram matmul.

Usage::

    python benchmarks/selection.py                 # CPU, the four shapes of issues 2 and 11
    python benchmarks/selection.py --device cuda   # on a GPU machine
    python benchmarks/selection.py --repeats 20 --threads 2

For every shape, on the same inputs in one run, it prints the median wall time of
- ``batched``: ``rediprune_select`` (incremental min-distance; on CPU rows computed when picked by a compiled
  per-frame loop, on a GPU one greedy loop for all frames over a Gram);
- ``per-frame loop``: the reference's cost written out here — per frame, the full L×L dissimilarity
  matrix, and at every step the minimum over all chosen rows (O(L²C + k²L) per frame);
- ``gram``: a single batched X·Xᵀ (the cost of merely forming the dissimilarities),
and the ratios (medians over rounds of the ratio within a round) batched/gram (target ≤ 1.2 on every shape) and loop/batched (target ≥ 4 at 32×144 on
CPU, ≥ 20 on the video shapes on a GPU). Warm-up runs precede timing; CUDA is synchronised around each
run; the functions are timed round-robin, so load changes on the machine hit all of them alike. The
last lines print the targets against the figures just measured.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from rediprune.pruning import rediprune_select

SHAPES = [  # (frames, tokens, width, ratio, label)
    (32, 144, 1024, 0.15, "LLaVA-NeXT-Video pooled"),
    (8, 576, 1024, 0.15, "LLaVA-NeXT-Video unpooled"),
    (8, 257, 1024, 0.10, "Video-LLaVA"),
    (1, 576, 1024, 0.10, "LLaVA-1.5"),
]


def per_frame_loop(features: torch.Tensor, query: torch.Tensor, ratio: float, alpha: float) -> list[torch.Tensor]:
    """The reference's cost: per frame, full D, and min over all chosen rows at every step."""
    out = []
    for frame in features:
        x = F.normalize(frame.float(), dim=-1)
        q = F.normalize(query.float().view(x.shape[1], -1).mean(1), dim=0)
        s = x @ q
        dist = 1.0 - x @ x.T
        k = max(1, round(ratio * x.shape[0]))
        chosen = [int(s.argmax())]
        mask = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        mask[chosen[0]] = True
        for _ in range(1, k):
            md = dist[chosen].min(dim=0).values
            score = (md + alpha * s).masked_fill(mask, float("-inf"))
            j = int(score.argmax())
            chosen.append(j)
            mask[j] = True
        out.append(torch.tensor(sorted(chosen)))
    return out


def gram(features: torch.Tensor) -> torch.Tensor:
    return torch.bmm(features, features.transpose(1, 2))


def interleaved_times(
    fns: dict, repeats: int, warmup: int, device: str, gap: float = 0.02
) -> dict[str, list[float]]:
    """Seconds per run of every function, timed round-robin so load changes hit all of them alike.

    Each run follows a ``gap`` of idle seconds: without it a run right after another's large matmul
    finds the BLAS threads still spinning and skips their wake-up, which the first run of a round pays,
    so the order of the functions would bias their ratios (measured up to 1.5× on a loaded 2-core CPU).
    """
    def timed(fn) -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            time.sleep(gap)  # every run starts from the same idle state (worker threads asleep)
            times[name].append(timed(fn))
    return times


def paired_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    """Median over rounds of num/den measured in the same round (robust to load drifting between rounds)."""
    return statistics.median(a / b for a, b in zip(times[num], times[den]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--alpha", type=float, default=0.5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    print(f"device={args.device} threads={torch.get_num_threads()} torch={torch.__version__}")
    header = f"{'shape':>14} {'r':>5} {'batched ms':>11} {'loop ms':>9} {'gram ms':>8} {'batched/gram':>13} {'loop/batched':>13}"
    print(header)
    ratios: list[tuple[int, int, float, float]] = []
    for frames, tokens, width, ratio, label in SHAPES:
        feats = torch.randn(frames, tokens, width, generator=gen).to(args.device)
        query = torch.randn(4096, generator=gen).to(args.device)
        got = rediprune_select(feats, query, ratio, args.alpha)
        ref = per_frame_loop(feats, query, ratio, args.alpha)
        differ = sum(not torch.equal(g.cpu(), r) for g, r in zip(got, ref))
        if differ:  # reported, not fatal: a one-shot GPU run still gives its timings
            print(f"MISMATCH {frames}x{tokens}x{width}: batched and loop keep different tokens in {differ} of {frames} frames")
        times = interleaved_times(
            {
                "batched": lambda: rediprune_select(feats, query, ratio, args.alpha),
                "loop": lambda: per_frame_loop(feats, query, ratio, args.alpha),
                "gram": lambda: gram(feats),
            },
            args.repeats, args.warmup, args.device,
        )
        t_sel, t_loop, t_gram = (statistics.median(times[n]) for n in ("batched", "loop", "gram"))
        over_gram, over_loop = paired_ratio(times, "batched", "gram"), paired_ratio(times, "loop", "batched")
        shape = f"{frames}x{tokens}x{width}"
        print(f"{shape:>14} {ratio:>5} {t_sel * 1e3:>11.2f} {t_loop * 1e3:>9.2f} {t_gram * 1e3:>8.2f} "
              f"{over_gram:>13.2f} {over_loop:>13.2f}   # {label}")
        ratios.append((frames, tokens, over_gram, over_loop))
    worst = max(r[2] for r in ratios)
    print(f"target batched/gram ≤ 1.2 on every shape: worst {worst:.2f} ({'met' if worst <= 1.2 else 'NOT met'})")
    loop = {(r[0], r[1]): r[3] for r in ratios}
    if (32, 144) in loop:
        want = 20 if args.device.startswith("cuda") else 4
        got = loop[(32, 144)]
        print(f"target loop/batched ≥ {want} at 32x144: {got:.2f} ({'met' if got >= want else 'NOT met'})")
    if args.device.startswith("cuda"):
        video = min(r[3] for r in ratios if r[0] > 1)
        print(f"target loop/batched ≥ 20 on the video shapes: worst {video:.2f} ({'met' if video >= 20 else 'NOT met'})")


if __name__ == "__main__":
    main()
