"""Benchmark: this project's CDPruner against a literal implementation of the original's greedy MAP.

Usage::

    python benchmarks/cdpruner.py                 # CPU, the shapes below
    python benchmarks/cdpruner.py --device cuda   # on a GPU machine
    python benchmarks/cdpruner.py --repeats 21 --threads 2

For every shape, on the same inputs in one run, it prints the median wall time of
- ``ours``: ``CDPruner.keep_mask`` (whole-sample relevance normalisation, one Gram, one greedy loop for
  all frames, numpy loop on CPU);
- ``orig/frame``: the original's algorithm written out literally, one frame at a time (features
  normalised, full similarity and kernel matrices, the greedy loop with its einsum per step);
- ``orig/batch``: the same with all frames as rows of one batch, as the original runs a video;
and the ratios (medians over rounds of the ratio within a round) orig/frame ÷ ours (target ≥ 1 on every shape, ≥ 2 at 8×144×1024) and orig/batch ÷ ours.
All three must keep the same tokens (checked before timing). Timing is round-robin (see
``benchmarks/selection.py``), so load on the machine hits all three alike.
"""
from __future__ import annotations

import argparse
import statistics

import torch

from rediprune.pruning import PruneParams, get_pruner, keep_count
from selection import interleaved_times, paired_ratio  # benchmarks/selection.py: the same timing in both

SHAPES = [  # (frames, tokens, width, ratio, label)
    (8, 144, 1024, 0.10, "8 pooled frames (issue 11's shape)"),
    (1, 576, 1024, 0.25, "one LLaVA-1.5 image"),
    (32, 144, 1024, 0.10, "32 pooled frames"),
    (8, 144, 4096, 0.10, "8 pooled frames, LLM width"),
    (1, 576, 4096, 0.10, "one image, LLM width"),
]


def original(features: torch.Tensor, relevance: torch.Tensor, k: int, per_frame: bool) -> torch.Tensor:
    """The original's formulas and loop, literally: sorted kept indices (F, k)."""
    rel = (relevance - relevance.min() + 1e-6) / (relevance.max() - relevance.min())  # whole sample
    chunks = [(features[f : f + 1], rel[f : f + 1]) for f in range(features.shape[0])] if per_frame else [(features, rel)]
    out = []
    for feats, r in chunks:
        batch, n = r.shape
        normed = (feats / feats.norm(dim=-1, keepdim=True)).float()
        similarity = torch.matmul(normed, normed.transpose(1, 2))
        kernel = r.unsqueeze(2) * similarity * r.unsqueeze(1)
        cis = torch.zeros((k, batch, n), device=feats.device)
        di2s = torch.diagonal(kernel, dim1=1, dim2=2).clone()
        select = torch.empty((k, batch), dtype=torch.long, device=feats.device)
        rows = torch.arange(batch, device=feats.device)
        for i in range(k):
            j = torch.argmax(di2s, dim=-1)
            select[i] = j
            eis = (kernel[rows, j] - torch.einsum("tb,tbn->bn", cis[:i, rows, j], cis[:i])) / torch.sqrt(
                di2s[rows, j]
            ).unsqueeze(-1)
            cis[i] = eis
            di2s -= torch.square(eis)
            di2s[rows, j] = -float("inf")
        out.append(torch.sort(select.t()).values)
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    pruner = get_pruner("cdpruner")
    print(f"device={args.device} threads={torch.get_num_threads()} torch={torch.__version__}")
    print(f"{'shape':>14} {'r':>5} {'ours ms':>9} {'orig/frame ms':>14} {'orig/batch ms':>14} "
          f"{'frame/ours':>11} {'batch/ours':>11}")
    results: list[tuple[int, int, int, float]] = []
    for frames, tokens, width, ratio, label in SHAPES:
        feats = torch.randn(frames, tokens, width, generator=gen).to(args.device)
        rel = torch.randn(frames, tokens, generator=gen).to(args.device)
        params, k = PruneParams(ratio=ratio), keep_count(ratio, tokens)
        ours = lambda: pruner.keep_mask(feats, params, relevance=rel)  # noqa: E731
        kept = ours().nonzero()[:, 1].view(frames, k).cpu()
        for per_frame in (True, False):
            theirs = original(feats, rel, k, per_frame).cpu()
            if not torch.equal(theirs, kept):  # reported, not fatal: a one-shot GPU run still gives its timings
                differ = int((theirs != kept).any(dim=1).sum())
                print(f"MISMATCH {frames}x{tokens}x{width} ({'per frame' if per_frame else 'batched'}): ours and "
                      f"the original keep different tokens in {differ} of {frames} frames")
        times = interleaved_times(
            {
                "ours": ours,
                "frame": lambda: original(feats, rel, k, True),
                "batch": lambda: original(feats, rel, k, False),
            },
            args.repeats, args.warmup, args.device,
        )
        med = {name: statistics.median(values) for name, values in times.items()}
        vs_frame, vs_batch = paired_ratio(times, "frame", "ours"), paired_ratio(times, "batch", "ours")
        results.append((frames, tokens, width, vs_frame))
        shape = f"{frames}x{tokens}x{width}"
        print(f"{shape:>14} {ratio:>5} {med['ours'] * 1e3:>9.2f} {med['frame'] * 1e3:>14.2f} "
              f"{med['batch'] * 1e3:>14.2f} {vs_frame:>11.2f} {vs_batch:>11.2f}   # {label}")
    worst = min(r[3] for r in results)
    print(f"target orig/frame ÷ ours ≥ 1 on every shape: worst {worst:.2f} ({'met' if worst >= 1 else 'NOT met'})")
    main_shape = [r[3] for r in results if r[:3] == (8, 144, 1024)]
    if main_shape:
        got = main_shape[0]
        print(f"target orig/frame ÷ ours ≥ 2 at 8x144x1024: {got:.2f} ({'met' if got >= 2 else 'NOT met'})")

if __name__ == "__main__":
    main()
