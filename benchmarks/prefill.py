"""Benchmark: prefill of a LLaVA-NeXT-Video-7B-shaped model through the adapter, pruner none / DivPrune / ReDiPrune.

Usage::

    python benchmarks/prefill.py --device cuda                  # 7B shape, bfloat16, 8 frames, r = 0.1 0.05 0.15
    python benchmarks/prefill.py --device cuda --frames 8,32 --repeats 15
    python benchmarks/prefill.py --shape tiny                   # CPU check: the tiny LLaVA-NeXT-Video of models/tiny.py

The model is ``LlavaNextVideoForConditionalGeneration`` with random weights and the shapes of
llava-hf/LLaVA-NeXT-Video-7B-hf (CLIP ViT-L/14-336 tower: 24 layers, width 1024, 576 patches pooled 2×2 to
144 per frame; Llama-7B: 32 layers, width 4096, MLP 11008, 32 heads), built directly on the device (no hub,
no weights file): the compute of every pass is the real model's, only the numbers differ. Prompts use the
tiny models' word-level tokenizer (its ids lie inside the 7B vocabulary), so a question is a few tens of
text tokens, as with the real tokenizer. It is wrapped in the project's own ``LlavaNextVideoAdapter`` and
``adapter.prefill`` (vision tower → pruner → projector → one LLM forward, ``logits_to_keep=1``) is timed,
CUDA-synchronised, after warm-ups, the pruners round-robin within every round so drifting load hits all
alike. Hyperparameters are the paper defaults (``PruneParams``/``PruningSettings`` defaults: α, τ, M, β,
exponential query).

Printed per (frames, ratio): median ms per prefill of each pruner, the kept visual tokens, the median
selection time (``SampleStats.selection_seconds``: the pruner's ``keep_mask`` alone) and query time
(``query_seconds``: building ReDiPrune's text query), then the target line
``added prefill ReDiPrune − DivPrune = X ms (target < 5 ms) PASS|FAIL`` (X: median over rounds of the
difference within a round; the paper's Table 3 shows 169 − 126 = 43 ms on LLaVA-NeXT-Video-7B).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch
from PIL import Image
from transformers import CLIPVisionConfig, LlamaConfig, LlavaNextVideoConfig, LlavaNextVideoForConditionalGeneration

from rediprune.models import PruningSettings
from rediprune.models.llava_next_video import LlavaNextVideoAdapter
from rediprune.models.tiny import build_tiny, build_tiny_tokenizer, square_image_processor, token_ids
from rediprune.models.processing import FrameProcessor
from rediprune.pruning import PruneParams

PRUNERS = ("none", "divprune", "rediprune")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
QUESTION = "what color is the circle on the left of the scene before the moving car appears ?"
TARGET_MS = 5.0


def build_7b(
    device: torch.device, dtype: torch.dtype, attn: str, *, text_layers: int = 32, vision_layers: int = 24
) -> tuple[LlavaNextVideoForConditionalGeneration, FrameProcessor]:
    """LLaVA-NeXT-Video-7B-shaped model with random weights, initialised on ``device`` in ``dtype``.

    ``text_layers``/``vision_layers`` below the real 32/24 only for checking the script on a CPU."""
    tokenizer = build_tiny_tokenizer()
    ids = {**token_ids(), "vocab_size": 32064}  # the 7B checkpoint's vocabulary size; tiny ids lie inside it
    vision = CLIPVisionConfig(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=vision_layers, num_attention_heads=16,
        image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu",
    )
    text = LlamaConfig(
        hidden_size=4096, intermediate_size=11008, num_hidden_layers=text_layers, num_attention_heads=32,
        num_key_value_heads=32, max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=False, **ids,
    )
    config = LlavaNextVideoConfig(
        vision_config=vision, text_config=text, vision_feature_layer=-2, vision_feature_select_strategy="default",
        spatial_pool_mode="average", spatial_pool_stride=2,
        image_grid_pinpoints=[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
    )
    with torch.device(device):  # random init on the GPU: seconds, not minutes
        model = LlavaNextVideoForConditionalGeneration._from_config(config, dtype=dtype, attn_implementation=attn)
    return model.eval(), FrameProcessor(tokenizer=tokenizer, image_processor=square_image_processor(336))


def frames_of(count: int, size: int, seed: int = 0) -> list[Image.Image]:
    """``count`` structured noise frames (blocks on noise), so tokens differ from each other."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        pixels = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        for _ in range(6):
            x, y = rng.integers(0, size - size // 4, 2)
            pixels[y : y + size // 4, x : x + size // 4] = rng.integers(0, 255, 3, dtype=np.uint8)
        out.append(Image.fromarray(pixels))
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(adapter, batch, settings: dict[str, PruningSettings], repeats: int, warmup: int) -> dict[str, dict[str, list[float]]]:
    """Per pruner: seconds per prefill, selection and query seconds, kept tokens; timed round-robin."""
    device = adapter.device
    for name, s in settings.items():
        adapter.configure(s)
        for _ in range(warmup):
            adapter.prefill(batch)
    sync(device)
    out = {name: {"prefill": [], "selection": [], "query": [], "kept": []} for name in settings}
    for _ in range(repeats):
        for name, s in settings.items():
            adapter.configure(s)
            sync(device)
            start = time.perf_counter()
            adapter.prefill(batch)
            sync(device)
            out[name]["prefill"].append(time.perf_counter() - start)
            stats = adapter.last_stats
            out[name]["selection"].append(sum(st.selection_seconds for st in stats))
            out[name]["query"].append(sum(st.query_seconds for st in stats))
            out[name]["kept"].append(sum(st.visual_tokens_after for st in stats))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--shape", default="7b", choices=("7b", "tiny"))
    parser.add_argument("--dtype", default=None, choices=tuple(DTYPES), help="default: bfloat16 on cuda, float32 on cpu")
    parser.add_argument("--frames", default="8", help="comma-separated frame counts, e.g. 8,32")
    parser.add_argument("--ratios", default="0.1,0.05,0.15", help="comma-separated keep ratios")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--attn", default="sdpa", choices=("sdpa", "eager"))
    args = parser.parse_args()
    try:
        frame_counts = [int(f) for f in args.frames.split(",")]
        ratios = [float(r) for r in args.ratios.split(",")]
    except ValueError:
        print(f"error: --frames={args.frames!r} / --ratios={args.ratios!r}: expected comma-separated numbers", file=sys.stderr)
        return 2
    if args.device != "cpu" and not torch.cuda.is_available():
        print(f"error: --device={args.device!r} is not allowed here: CUDA is not available", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    if args.shape == "7b" and device.type == "cpu":
        print("error: --shape=7b is not allowed with --device=cpu (28 GB of weights); use --shape tiny on a CPU", file=sys.stderr)
        return 2
    dtype = DTYPES[args.dtype or ("bfloat16" if device.type == "cuda" else "float32")]
    torch.manual_seed(0)

    start = time.perf_counter()
    if args.shape == "7b":
        model, processor = build_7b(device, dtype, args.attn)
        size = 336
    else:
        model, processor = build_tiny("llava_next_video", args.attn)
        size = int(model.config.vision_config.image_size)
    adapter = LlavaNextVideoAdapter(
        model, processor, checkpoint=f"random/{args.shape}", device=device, dtype=dtype, prune_position="after_pool"
    )
    sync(device)
    params = sum(p.numel() for p in adapter.model.parameters())
    print(f"device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}) "
          f"shape={args.shape} dtype={str(dtype).removeprefix('torch.')} attn={args.attn} torch={torch.__version__} "
          f"params={params / 1e9:.2f}B built in {time.perf_counter() - start:.1f} s")
    print(f"hyperparameters: {PruneParams()} query=exponential; repeats={args.repeats} warmup={args.warmup}")
    header = (f"{'frames':>6} {'r':>5} {'pruner':>10} {'prefill ms':>11} {'kept':>6} {'select ms':>10} "
              f"{'query ms':>9}")
    for count in frame_counts:
        batch = adapter.prepare([QUESTION], [frames_of(count, size)], modality="video")
        print(f"\n{count} frames, {batch.tokens_per_frame} tokens per frame, prompt of "
              f"{batch.input_ids.shape[1] - count * batch.tokens_per_frame} text tokens")
        print(header)
        for ratio in ratios:
            settings = {name: PruningSettings(pruner=name, params=PruneParams(ratio=ratio)) for name in PRUNERS}
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            times = measure(adapter, batch, settings, args.repeats, args.warmup)
            for name in PRUNERS:
                t = times[name]
                print(f"{count:>6} {ratio:>5} {name:>10} {statistics.median(t['prefill']) * 1e3:>11.2f} "
                      f"{int(statistics.median(t['kept'])):>6} {statistics.median(t['selection']) * 1e3:>10.3f} "
                      f"{statistics.median(t['query']) * 1e3:>9.3f}")
            added = statistics.median(
                (a - b) * 1e3 for a, b in zip(times["rediprune"]["prefill"], times["divprune"]["prefill"])
            )
            peak = f"; peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB" if device.type == "cuda" else ""
            print(f"added prefill ReDiPrune − DivPrune = {added:.2f} ms (target < {TARGET_MS:g} ms) "
                  f"{'PASS' if added < TARGET_MS else 'FAIL'}   # {args.shape}, {count} frames, r = {ratio}{peak}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
