"""The README's picture of the demo world: one held-out image per question type and one video clip.

Usage::

    python -m rediprune.demo.figure docs/demo_world.png
"""
from __future__ import annotations

import sys
from pathlib import Path

from rediprune.demo.world import CELL, GRID, QUESTION_TYPES, benchmark_docs, render_frames, render_scene, video_docs


def write_figure(path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    docs = benchmark_docs(len(QUESTION_TYPES))
    clip = video_docs(1)[0]
    fig, axes = plt.subplots(2, 5, figsize=(11, 5.2), dpi=110)
    for ax, doc in zip(axes[0], docs):
        ax.imshow(render_scene(doc["objects"], doc["background"]))
        ax.set_title(f"[{doc['type']}]\n{doc['question']} → {doc['answer']}", fontsize=7)
    for i, (ax, frame) in enumerate(zip(axes[1], render_frames(clip))):
        ax.imshow(frame)
        ax.set_title(f"video frame {i + 1}" + ("\n" + f"{clip['question']} → {clip['answer']}" if i == 0 else ""),
                     fontsize=7.5)
    axes[1][4].axis("off")
    axes[1][4].text(0, 0.5, f"96×96 px, {GRID}×{GRID} patches of {CELL} px:\n64 visual tokens per image/frame\n"
                    "(video: + CLS = 65 per frame)", fontsize=8, va="center")
    for ax in axes.flat[:9]:
        ax.set_xticks([c * CELL - 0.5 for c in range(GRID + 1)], labels=[])
        ax.set_yticks([c * CELL - 0.5 for c in range(GRID + 1)], labels=[])
        ax.grid(color="white", alpha=0.25, linewidth=0.5)
        ax.tick_params(length=0)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(write_figure(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/demo_world.png")))
