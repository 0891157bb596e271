"""The shared mechanism of every backbone adapter: encode → prune → project → shrink placeholders → LLM.

Usage::

    adapter.configure(PruningSettings(pruner="rediprune", params=PruneParams(ratio=0.15)))
    batch = adapter.prepare(["What is moving?"], [frames])      # frames: list of PIL images
    result = adapter.generate(batch, max_new_tokens=16)          # texts, ids, per-sample token stats

Instead of patching modules inside the transformers model, the adapter computes the visual features
itself, exactly as the model's own ``get_image_features``/``get_video_features`` would (same tower, same
hidden layer, same CLS handling, same pool and projector), prunes them, and hands the kept, projected
features to the unmodified model through its ``mm_encoder_outputs`` argument (transformers 5.23:
``generate()`` and ``forward()`` accept pre-encoded multimodal outputs and then skip their own encoder).
Each frame's run of L placeholder ids shrinks to its kept count in ``input_ids``/``attention_mask``, so the
model's placeholder check and ``masked_scatter`` see exactly the kept tokens; position ids need no change
for these families. With nothing pruned the inputs are the model's own, so outputs are identical.

Prompts use llava-hf's plain conversation format, ``USER: <image>\n{question} ASSISTANT:`` (``<video>``
for videos); assign ``adapter.prompt_template`` to change it. Per-family subclasses say only what differs: which tower runs for a modality, which tokens it keeps (CLS,
2×2 pool), the placeholder tokens and how the kept features are packed for the model.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import MutableMapping
from typing import Any, ClassVar, Sequence

import torch
from torch import nn
from transformers import AutoImageProcessor, AutoTokenizer
from transformers.modeling_outputs import BaseModelOutputWithPooling

from rediprune.models.clip import ClipScorer
from rediprune.models.processing import FrameProcessor, expand_placeholders, left_pad, shrink_placeholder_runs
from rediprune.models.types import GenerationResult, PreparedBatch, PruningSettings, SampleStats
from rediprune.pruning import Need, Placement, build_queries, get_pruner

MODALITIES = ("image", "video")
_PROMPT = "USER: {visual}{question} ASSISTANT:"  # llava-hf's plain conversation format for all three families


class BackboneAdapter:
    """A loaded LLaVA-style model with a configurable visual-token pruner in front of its LLM.

    Attributes: ``family``; ``model`` (the transformers model, eval mode); ``processor``
    (:class:`FrameProcessor`); ``tokenizer``; ``settings`` (the current :class:`PruningSettings`);
    ``feature_cache`` (optional mapping for encoder features, see :meth:`encode`); ``cache_stats``;
    ``last_stats`` (the :class:`SampleStats` of the latest ``generate``/``prefill``).
    """

    family: ClassVar[str]
    model_class: ClassVar[type]
    default_clip: ClassVar[str]  # CLIP for CDPruner relevance when backbone.clip_checkpoint is None
    prompt_template: ClassVar[str] = _PROMPT

    def __init__(
        self,
        model: nn.Module,
        processor: FrameProcessor,
        *,
        checkpoint: str,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        prune_position: str = "after_pool",
        clip_loader=None,
    ) -> None:
        """Wrap an already loaded ``model`` (use :func:`rediprune.models.load_adapter` to load one).

        ``checkpoint`` names the weights in feature-cache keys; ``clip_loader`` is a zero-argument callable
        returning a :class:`ClipScorer`, called the first time a pruner needs CLIP relevance.
        """
        self.device = torch.device(device)
        self.dtype = dtype
        self.model = model.to(device=self.device, dtype=dtype).eval().requires_grad_(False)  # inference only
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.checkpoint = checkpoint
        self.prune_position = prune_position
        self.feature_cache: MutableMapping[str, torch.Tensor] | None = None
        # answer reuse (see generate): key → generated ids (float64); None = always generate
        self.answer_cache: MutableMapping[str, torch.Tensor] | None = None
        self.answer_stats = {"reused": 0, "generated": 0}
        self.last_stats: list[SampleStats] = []
        self._clip_loader = clip_loader
        self._clip: ClipScorer | None = None
        self._hits = 0
        self._misses = 0
        self.configure(PruningSettings(pruner="none"))

    # ----------------------------------------------------------------- family hooks (override)
    @staticmethod
    def load_processor(path: str) -> FrameProcessor:
        """Tokenizer and image processor of a checkpoint (PIL backend where torchvision is missing)."""
        return FrameProcessor(AutoTokenizer.from_pretrained(path), AutoImageProcessor.from_pretrained(path))

    def tower_name(self, modality: str) -> str:
        """Attribute of ``model.model`` holding the vision tower used for ``modality``."""
        return "vision_tower"

    def placeholder_id(self, modality: str) -> int:
        """Token id whose run stands for the frames of one visual input."""
        return int(self.model.config.image_token_id)

    def placeholders_per_sample(self, frames: int, modality: str) -> int:
        """How many placeholder tokens a prompt with ``frames`` frames holds (before expansion)."""
        return frames

    def tokens_per_frame(self, modality: str, height: int, width: int) -> int:
        """L: tokens per frame the pruner sees and the unpruned model feeds to the LLM."""
        patches = (height // self.patch_size) * (width // self.patch_size)
        return patches + (0 if self.select_strategy == "default" else 1)

    def select_tokens(self, hidden: torch.Tensor, modality: str, *, embeddings: bool = False) -> torch.Tensor:
        """(N, P+1, C) tower output → (N, L, C) tokens per frame (drop CLS, pool, …).

        ``embeddings`` is True when ``hidden`` are CLIP embeddings for relevance rather than features for
        the projector (a family that pools must then pool without its learned pooler).
        """
        return hidden[:, 1:] if self.select_strategy == "default" else hidden

    def pack(self, projected: torch.Tensor, modality: str) -> dict[str, BaseModelOutputWithPooling]:
        """``mm_encoder_outputs`` for the model from kept, projected tokens (n, D) in placeholder order."""
        return {"image": BaseModelOutputWithPooling(pooler_output=[projected])}

    def unmodified_inputs(self, batch: PreparedBatch) -> dict[str, torch.Tensor]:
        """Keyword inputs that make the unmodified model encode the batch itself (the 'Original' run)."""
        return {
            "input_ids": batch.input_ids,
            "attention_mask": batch.attention_mask,
            "pixel_values": self._pixels(batch),
        }

    # ----------------------------------------------------------------- configuration
    @property
    def patch_size(self) -> int:
        return int(self.model.config.vision_config.patch_size)

    @property
    def select_strategy(self) -> str:
        return str(getattr(self.model.config, "vision_feature_select_strategy", "default"))

    @property
    def feature_layers(self) -> tuple[int, ...]:
        layer = self.model.config.vision_feature_layer
        return (int(layer),) if isinstance(layer, int) else tuple(int(x) for x in layer)

    @property
    def visual_token_ids(self) -> tuple[int, ...]:
        """Every placeholder id of this family (the query starts after the last of them)."""
        config = self.model.config
        ids = {getattr(config, name, None) for name in ("image_token_id", "video_token_id")} - {None}
        return tuple(sorted(int(i) for i in ids))

    @property
    def cache_stats(self) -> dict[str, int]:
        """Feature-cache hits and misses, counted per frame since creation or :meth:`reset_cache_stats`."""
        return {"hits": self._hits, "misses": self._misses}

    def reset_cache_stats(self) -> None:
        self._hits = self._misses = 0

    def configure(self, settings: PruningSettings) -> None:
        """Switch pruner and hyperparameters on the loaded model (cheap; nothing is reloaded).

        Loads the CDPruner CLIP model on first use. Raises ValueError for settings this adapter cannot run.
        """
        if not isinstance(settings, PruningSettings):
            raise ValueError(f"settings={settings!r} is not allowed; expected a rediprune.models.PruningSettings")
        pruner = get_pruner(settings.pruner)
        placement = pruner.placement if settings.placement == "default" else Placement(settings.placement)
        if Need.CLIP_RELEVANCE in pruner.requires:
            self._ensure_clip()
        self.settings, self._pruner, self._placement = settings, pruner, placement

    @property
    def placement(self) -> Placement:
        """Where the configured pruner acts (its own placement unless the settings override it)."""
        return self._placement

    def _ensure_clip(self) -> ClipScorer:
        if self._clip is None:
            if self._clip_loader is None:
                raise ValueError("clip_checkpoint: this adapter has no CLIP model configured for CLIP relevance")
            self._clip = self._clip_loader()
        return self._clip

    # ----------------------------------------------------------------- inputs
    def prepare(
        self, questions: Sequence[str], visuals: Sequence[Sequence[Any]], modality: str | None = None
    ) -> PreparedBatch:
        """Format prompts, tokenize, expand placeholders to L per frame, left-pad; preprocess frames.

        ``visuals[b]`` is the list of PIL frames of sample b (an image is one frame; none = text only).
        ``modality`` "image" or "video"; None picks "video" when a sample has more than one frame. Placeholder
        strings inside a question are removed (the adapter places the visual input itself); ``batch.questions``
        holds the questions so cleaned, which is also the text CDPruner's CLIP relevance reads.
        """
        if isinstance(questions, str) or len(questions) == 0 or len(questions) != len(visuals):
            raise ValueError(
                f"questions/visuals: expected equally long non-empty lists, got {type(questions).__name__} of "
                f"{len(questions)} and {len(visuals)}"
            )
        visuals = [list(v) if isinstance(v, (list, tuple)) else [v] for v in visuals]
        frames = [len(v) for v in visuals]
        if modality is None:
            modality = "video" if max(frames) > 1 else "image"
        if modality not in MODALITIES:
            raise ValueError(f"modality={modality!r} is not allowed; expected 'image', 'video' or None")
        all_frames = [f for v in visuals for f in v]
        pixels = self.processor.pixel_values(all_frames).to(self.device) if all_frames else None
        size = pixels.shape[-2:] if pixels is not None else (self.model.config.vision_config.image_size,) * 2
        length = self.tokens_per_frame(modality, int(size[0]), int(size[1]))
        pid = self.placeholder_id(modality)
        token = self.tokenizer.convert_ids_to_tokens(pid)
        cleaned, prompts, rows = [], [], []
        for question, count in zip(questions, frames):
            for placeholder in (self.processor.image_token, self.processor.video_token):
                question = question.replace(placeholder, "")
            question = question.strip()
            slots = self.placeholders_per_sample(count, modality)
            prompt = self.prompt_template.format(visual=f"{token}\n" * slots, question=question)
            ids = self.tokenizer(prompt)["input_ids"]
            if ids.count(pid) != slots:
                raise ValueError(f"prompt {prompt!r} tokenizes to {ids.count(pid)} placeholder(s), expected {slots}")
            run = count * length // slots if slots else 0
            cleaned.append(question)
            prompts.append(prompt)
            rows.append(torch.tensor(expand_placeholders(ids, pid, run), dtype=torch.long))
        input_ids, attention_mask = left_pad(rows, self.processor.pad_token_id, self.device)
        return PreparedBatch(
            questions=cleaned,
            prompts=prompts,
            input_ids=input_ids,
            attention_mask=attention_mask,
            pixel_values=pixels,
            frames=frames,
            modality=modality,
            tokens_per_frame=length,
        )

    def _pixels(self, batch: PreparedBatch) -> torch.Tensor | None:
        if batch.pixel_values is None:
            return None
        return batch.pixel_values.to(device=self.device, dtype=self.dtype)

    # ----------------------------------------------------------------- encoder (+ cache)
    @torch.inference_mode()
    def encode(self, pixel_values: torch.Tensor, modality: str = "image") -> torch.Tensor:
        """(N, L, C) encoder features the pruner sees (before projection), for N frames.

        Exactly what the model's own feature path computes before its projector. Tower outputs go through
        ``feature_cache`` when one is set: keys hash the frame's pixels with the checkpoint, tower, layer
        and dtype, so they are independent of every pruning hyperparameter.
        """
        return self._features(self._tower_states(pixel_values, modality, self.feature_layers), modality)

    def _features(self, states: dict[int, torch.Tensor], modality: str) -> torch.Tensor:
        hidden = torch.cat([states[layer] for layer in self.feature_layers], dim=-1)
        return self.select_tokens(hidden, modality)

    def _tower_states(
        self, pixel_values: torch.Tensor, modality: str, layers: Sequence[int]
    ) -> dict[int, torch.Tensor]:
        """Hidden states (N, P+1, C) of the modality's tower at ``layers``, through the feature cache."""
        tower_name = self.tower_name(modality)
        tower = getattr(self.model.model, tower_name)
        pixels = pixel_values.to(device=self.device, dtype=self.dtype)
        cache = self.feature_cache
        if cache is None:
            out = tower(pixels, output_hidden_states=True)
            return {layer: out.hidden_states[layer] for layer in layers}
        digests = [_digest(frame) for frame in pixel_values]
        prefix = f"{self.checkpoint}|{tower_name}"
        keys = [[f"{prefix}|layer={layer}|{self.dtype}|{d}" for layer in layers] for d in digests]
        found: list[list[torch.Tensor | None]] = [[cache.get(k) for k in row] for row in keys]
        missing = [i for i, row in enumerate(found) if any(t is None for t in row)]
        self._misses += len(missing)
        self._hits += len(found) - len(missing)
        if missing:
            out = tower(pixels[missing], output_hidden_states=True)
            for j, i in enumerate(missing):
                for li, layer in enumerate(layers):
                    state = out.hidden_states[layer][j]
                    cache[keys[i][li]] = state.detach().to("cpu")  # CPU: a long sweep must not fill the GPU
                    found[i][li] = state
        return {
            layer: torch.stack([row[li].to(device=self.device, dtype=self.dtype) for row in found])
            for li, layer in enumerate(layers)
        }

    def feature_problem(self, key: str, value: Any) -> str | None:
        """Why a cached entry cannot be a state of the tower its key names (shape), or None.

        The feature cache checks what it reads from disk with this, so an entry of the wrong shape (a
        different tower's, a hand-copied file) is recomputed instead of failing every trial.
        """
        tower_name = key.rsplit("|", 4)[1] if key.count("|") >= 4 else ""
        tower = getattr(self.model.model, tower_name, None)
        if tower is None or not isinstance(value, torch.Tensor):
            return None
        embeddings = getattr(getattr(tower, "vision_model", tower), "embeddings", None)
        tokens = getattr(embeddings, "num_positions", None)
        hidden = tower.config.hidden_size
        expected = (tokens if isinstance(tokens, int) else value.shape[0], hidden)
        if tuple(value.shape) != expected:
            return f"shape {tuple(value.shape)}, but {tower_name} gives {expected}"
        return None

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """The model's own vision-language projector on (…, C) features."""
        return self.model.model.multi_modal_projector(features)

    # ----------------------------------------------------------------- pruning
    @torch.inference_mode()
    def _llm_inputs(self, batch: PreparedBatch) -> tuple[dict[str, Any], list[SampleStats]]:
        """Pruned model inputs (input_ids, attention_mask, mm_encoder_outputs) and per-sample stats."""
        length = batch.tokens_per_frame
        if batch.pixel_values is None:
            self._last_masks = [torch.zeros(0, 0, dtype=torch.bool)] * len(batch)
            stats = [self._stats(batch, b, 0, 0.0, 0.0) for b in range(len(batch))]
            return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask}, stats
        pruner = self._pruner
        settings = self.settings
        # query.source=clip_text: the query-based pruner gets CLIP text-patch cosines as its relevance
        clip_query = (
            Need.QUERY in pruner.requires and settings.query_source == "clip_text" and settings.query_strategy != "none"
        )
        need_clip = Need.CLIP_RELEVANCE in pruner.requires or clip_query
        layers = tuple(dict.fromkeys(self.feature_layers + ((-1,) if need_clip else ())))
        # one tower pass serves both; the processor's float32 pixels, so cache keys are the same as encode()'s
        states = self._tower_states(batch.pixel_values, batch.modality, layers)
        features = self._features(states, batch.modality)
        if features.shape[1] != length:
            raise RuntimeError(f"encoder gave {features.shape[1]} tokens per frame, prompts hold {length}")

        start = _now(self.device)
        query = relevance = None
        if clip_query:
            relevance = -self._clip_relevance(batch, states[-1])  # cosines: the minus is CDPruner's
        elif Need.QUERY in pruner.requires:
            query = build_queries(
                batch.input_ids,
                batch.attention_mask,
                self.model.get_input_embeddings().weight,
                self.visual_token_ids,
                self.settings.query_strategy,
                self.settings.query_max_tokens,
            )
        if Need.CLIP_RELEVANCE in pruner.requires:
            relevance = self._clip_relevance(batch, states[-1])
        query_seconds = (_now(self.device) - start) / len(batch)  # each sample's share of the batch

        post = self._placement == Placement.POST_PROJECTION
        projected_all = self.project(features) if post else None
        masks, seconds = self._select(projected_all if post else features, batch, query, relevance)
        keep = torch.cat(masks)
        everything = bool(keep.all())
        if post:
            projected = projected_all.flatten(0, 1) if everything else projected_all[keep]
        else:
            projected = self.project(features).flatten(0, 1) if everything else self.project(features[keep])

        if everything:
            input_ids, attention_mask = batch.input_ids, batch.attention_mask
        else:
            kept = [m.sum(dim=1) for m in masks]
            input_ids, attention_mask = shrink_placeholder_runs(
                batch.input_ids, batch.attention_mask, self.visual_token_ids, kept, length, self.processor.pad_token_id
            )
        self._last_masks = masks
        stats = [
            self._stats(batch, b, int(masks[b].sum()), seconds[b], query_seconds) for b in range(len(batch))
        ]
        inputs = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "mm_encoder_outputs": self.pack(projected, batch.modality),
        }
        return inputs, stats

    def _select(
        self, space: torch.Tensor, batch: PreparedBatch, query: torch.Tensor | None, relevance: torch.Tensor | None
    ) -> tuple[list[torch.Tensor], list[float]]:
        """Keep masks (F_b, L) per sample from the configured pruner, and each sample's selection seconds.

        A ``frames_independent`` pruner (ReDiPrune, CDPruner) gets every frame of the batch in one call,
        each frame with its own sample's query row and the frame count of every sample (CDPruner
        normalises relevance per sample; SPEC §2.4: one greedy loop for all frames of a batch);
        the call's time is shared among samples by frame count. Other pruners get one call per sample.
        """
        pruner, params, length = self._pruner, self.settings.params, batch.tokens_per_frame
        counts = list(batch.frames)
        if pruner.frames_independent and len(counts) > 1:
            start = _now(self.device)
            rows = None if query is None else query.repeat_interleave(torch.tensor(counts, device=query.device), 0)
            mask = pruner.keep_mask(space, params, query=rows, relevance=relevance, frames_per_sample=counts)
            seconds = _now(self.device) - start
            self._check_mask(mask, sum(counts), length)
            masks = list(mask.to(self.device).split(counts))
            return masks, [seconds * count / sum(counts) for count in counts]
        masks, times, lo = [], [], 0
        for b, count in enumerate(counts):
            hi, start = lo + count, _now(self.device)
            if count == 0:
                mask = torch.zeros(0, length, dtype=torch.bool, device=self.device)
            else:
                mask = pruner.keep_mask(
                    space[lo:hi],
                    params,
                    query=None if query is None else query[b],
                    relevance=None if relevance is None else relevance[lo:hi],
                )
            times.append(_now(self.device) - start if count else 0.0)
            self._check_mask(mask, count, length)
            masks.append(mask.to(self.device))
            lo = hi
        return masks, times

    def _check_mask(self, mask: torch.Tensor, frames: int, length: int) -> None:
        if mask.shape != (frames, length) or mask.dtype != torch.bool:
            raise RuntimeError(
                f"pruner {self.settings.pruner!r} returned a {mask.dtype} mask of shape {tuple(mask.shape)}, "
                f"expected bool ({frames}, {length})"
            )

    def _stats(self, batch: PreparedBatch, b: int, kept: int, seconds: float, query_seconds: float) -> SampleStats:
        frames, length = batch.frames[b], batch.tokens_per_frame
        real = int(batch.attention_mask[b].sum())
        return SampleStats(
            frames=frames,
            tokens_per_frame_before=length,
            tokens_per_frame_after=kept / frames if frames else 0.0,
            visual_tokens_before=frames * length,
            visual_tokens_after=kept,
            text_tokens=real - frames * length,
            selection_seconds=seconds,
            query_seconds=query_seconds,
        )

    def _clip_relevance(self, batch: PreparedBatch, last: torch.Tensor) -> torch.Tensor:
        """(N, L) CDPruner relevance of every token of every frame to its sample's raw question.

        ``last`` is the tower's last hidden state (N, P+1, C); it passes the tower's post-layernorm and
        CLIP's visual projection, then the same token selection as the features (CLS, pool)."""
        from rediprune.pruning.baselines import clip_relevance

        clip = self._ensure_clip()
        tower = getattr(self.model.model, self.tower_name(batch.modality))
        embeds = self.select_tokens(clip.image_embeds(last, tower.post_layernorm), batch.modality, embeddings=True)
        rows, lo = [], 0
        for question, count in zip(batch.questions, batch.frames):
            if count:
                rows.append(clip_relevance(embeds[lo : lo + count], clip.text_embeds(question)))
            lo += count
        return torch.cat(rows).to(self.device)

    # ----------------------------------------------------------------- running
    @torch.inference_mode()
    def generate(self, batch: PreparedBatch, max_new_tokens: int = 16, **generate_kwargs: Any) -> GenerationResult:
        """Greedy decoding on the pruned inputs. ``sequences`` holds only the new ids (pad after EOS)."""
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f"max_new_tokens={max_new_tokens!r} is not allowed; expected an integer ≥ 1")
        inputs, stats = self._llm_inputs(batch)
        options = {"do_sample": False, "num_beams": 1, "pad_token_id": self.processor.pad_token_id}
        options.update(generate_kwargs)
        cache = self.answer_cache
        if cache is None:
            new = self._run_generate(inputs, max_new_tokens, options)
        else:
            new = self._generate_reusing(batch, inputs, cache, max_new_tokens, options)
        texts = [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        self.last_stats = stats
        return GenerationResult(texts=texts, sequences=new, stats=stats)

    def _run_generate(self, inputs: dict[str, Any], max_new_tokens: int, options: dict[str, Any]) -> torch.Tensor:
        out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, **options)
        return out[:, inputs["input_ids"].shape[1] :].cpu()

    def _generate_reusing(
        self,
        batch: PreparedBatch,
        inputs: dict[str, Any],
        cache: MutableMapping[str, torch.Tensor],
        max_new_tokens: int,
        options: dict[str, Any],
    ) -> torch.Tensor:
        """New ids (B, n) where samples whose LLM input was seen before reuse the answer generated then.

        Greedy decoding is a function of the LLM's input, and that input is a function of what
        :meth:`answer_key` hashes, so an equal key means an equal answer. Selection has already run
        (it gives the key; token counts and selection times stay per call); only the LLM is skipped.
        Samples not seen before are generated together, as a sub-batch of this batch.
        """
        keys = [self.answer_key(batch, b, self._last_masks[b], max_new_tokens, options) for b in range(len(batch))]
        found: list[torch.Tensor | None] = []
        for key in keys:
            stored = cache.get(key)
            found.append(None if stored is None else stored.long())
        missing = [b for b, ids in enumerate(found) if ids is None]
        if missing:
            if len(missing) == len(batch):
                new = self._run_generate(inputs, max_new_tokens, options)
            else:
                sub_inputs, _ = self._llm_inputs(batch.subset(missing))
                new = self._run_generate(sub_inputs, max_new_tokens, options)
            for row, b in zip(new, missing):
                found[b] = row.clone()
                # stored as float64, exact for every token id, so a store that keeps only floating
                # tensors (the sweep's TensorCache checks what it reads back from disk) accepts it
                cache[keys[b]] = row.double()
        self.answer_stats["generated"] += len(missing)
        self.answer_stats["reused"] += len(batch) - len(missing)
        width = max(int(ids.shape[0]) for ids in found)  # type: ignore[union-attr]
        pad = self.processor.pad_token_id
        out = torch.full((len(batch), width), pad if pad is not None else 0, dtype=torch.long)
        for b, ids in enumerate(found):
            out[b, : ids.shape[0]] = ids  # type: ignore[union-attr]
        return out

    def answer_key(
        self, batch: PreparedBatch, b: int, mask: torch.Tensor, max_new_tokens: int, options: dict[str, Any]
    ) -> str:
        """Hash of everything sample ``b``'s greedy answer depends on (32 hex).

        The model (checkpoint, family, dtype, pooling position, feature layers), the prompt ids (padding
        removed), the sample's pixels, where the pruner acted and the kept token indices of every frame,
        and the generation settings. Not the hyperparameters: settings that keep the same tokens share
        the answer.
        """
        h = hashlib.blake2b(digest_size=16)
        real = batch.attention_mask[b].bool()
        ident = {
            "checkpoint": self.checkpoint, "family": self.family, "dtype": str(self.dtype),
            "prune_position": self.prune_position, "layers": list(self.feature_layers),
            "placement": str(getattr(self._placement, "value", self._placement)), "modality": batch.modality,
            "max_new_tokens": max_new_tokens, "options": sorted((k, repr(v)) for k, v in options.items()),
        }
        h.update(repr(ident).encode())
        h.update(batch.input_ids[b][real].cpu().numpy().tobytes())
        if batch.pixel_values is not None and batch.frames[b]:
            lo = sum(batch.frames[:b])
            for frame in batch.pixel_values[lo : lo + batch.frames[b]]:
                h.update(_digest(frame).encode())
        h.update(f"{tuple(mask.shape)}".encode())
        h.update(mask.cpu().numpy().tobytes())
        return h.hexdigest()

    @torch.inference_mode()
    def prefill(self, batch: PreparedBatch, logits_to_keep: int = 1) -> torch.Tensor:
        """One forward pass over the pruned prompt, as generation's prefill; returns logits (B, n, V).

        ``logits_to_keep`` = 1 (like ``generate``) keeps the last position only; 0 keeps all. The token
        accounting of the pass is in ``last_stats``.
        """
        inputs, stats = self._llm_inputs(batch)
        out = self.model(**inputs, logits_to_keep=logits_to_keep)
        self.last_stats = stats
        return out.logits


def _digest(frame: torch.Tensor) -> str:
    data = frame.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return hashlib.blake2b(data, digest_size=16).hexdigest() + f"-{'x'.join(map(str, frame.shape))}"


def _now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
