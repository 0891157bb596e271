"""Acceptance tests of rediprune.models on the tiny backbones of all three families (issue 3, deliverable 1).

What the LLM really receives is inspected with forward hooks: the ``input_ids`` the model is called with
(placeholder runs) and the ``inputs_embeds`` its language model gets (length, visual rows).
"""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

from rediprune.config.evaluation import BackboneConfig
from rediprune.models import PruningSettings, load_adapter, tiny_vocabulary
from rediprune.models.processing import shrink_placeholder_runs
from rediprune.models.tiny import TINY_WORDS, build_tiny, build_tiny_tokenizer
from rediprune.pruning import Placement, PruneParams, build_queries, get_pruner, keep_count

FAMILIES = ("llava", "video_llava", "llava_next_video")
FRAMES = {"llava": 1, "video_llava": 2, "llava_next_video": 2}  # image for LLaVA, 2-frame videos otherwise
Q1 = "what color is the circle on the left ?"
Q2 = "how many squares are there ?"


def frame(seed: int, size: int = 64) -> Image.Image:
    """A deterministic structured frame: coloured blocks on noise, so tokens differ from each other."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    for _ in range(4):
        x, y = rng.integers(0, size - 16, 2)
        pixels[y : y + 16, x : x + 16] = rng.integers(0, 255, 3, dtype=np.uint8)
    return Image.fromarray(pixels)


def video(family: str, seed: int) -> list[Image.Image]:
    return [frame(seed + i) for i in range(FRAMES[family])]


@pytest.fixture(scope="module")
def adapters():
    return {family: load_adapter(BackboneConfig(family=family)) for family in FAMILIES}


@pytest.fixture(params=FAMILIES)
def adapter(request, adapters):
    a = adapters[request.param]
    a.configure(PruningSettings(pruner="none"))
    a.feature_cache = None
    yield a
    a.configure(PruningSettings(pruner="none"))


def settings(pruner: str = "rediprune", **params) -> PruningSettings:
    return PruningSettings(pruner=pruner, params=PruneParams(**params))


class LLMSpy:
    """Records what the model and its language model receive during a forward pass."""

    def __init__(self, adapter):
        self.ids: list[torch.Tensor] = []
        self.embeds: list[torch.Tensor] = []
        self.handles = [
            adapter.model.register_forward_pre_hook(self._model, with_kwargs=True),
            adapter.model.model.language_model.register_forward_pre_hook(self._lm, with_kwargs=True),
        ]

    def _model(self, module, args, kwargs):
        self.ids.append(kwargs["input_ids"].clone())

    def _lm(self, module, args, kwargs):
        self.embeds.append(kwargs["inputs_embeds"].clone())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()


def unmodified_generate(adapter, batch, max_new_tokens: int) -> torch.Tensor:
    """Greedy ids of the untouched model encoding the batch itself (prompt included)."""
    inputs = adapter.unmodified_inputs(batch)
    return adapter.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=0)


def visual_mask(adapter, ids: torch.Tensor) -> torch.Tensor:
    return torch.isin(ids, torch.tensor(adapter.visual_token_ids, device=ids.device))


# ----------------------------------------------------------------------------- identity with the model
@pytest.mark.parametrize("how", ["none", "ratio_1"])
def test_unpruned_generates_the_unmodified_models_ids(adapter, how):
    family = adapter.family
    batch = adapter.prepare([Q1, Q2], [video(family, 0), video(family, 10)])
    if how == "ratio_1":
        adapter.configure(settings(ratio=1.0))
    ours = adapter.generate(batch, max_new_tokens=8)
    with torch.inference_mode():
        reference = unmodified_generate(adapter, batch, 8)
    assert torch.equal(ours.sequences, reference[:, batch.input_ids.shape[1] :])
    assert all(s.visual_tokens_after == s.visual_tokens_before for s in ours.stats)


def test_llava_prompt_ids_match_the_transformers_processor(adapters):
    from transformers import LlavaProcessor

    adapter = adapters["llava"]
    proc = adapter.processor
    hf = LlavaProcessor(image_processor=proc.image_processor, tokenizer=proc.tokenizer, patch_size=8,
                        vision_feature_select_strategy="default", num_additional_image_tokens=1)  # CLS
    batch = adapter.prepare([Q1], [[frame(3)]])
    expected = hf(text=batch.prompts, images=[frame(3)], return_tensors="pt")
    assert torch.equal(batch.input_ids, expected["input_ids"])
    assert torch.equal(batch.pixel_values, expected["pixel_values"])


def test_video_llava_image_path_drops_cls_and_matches_the_model(adapters):
    adapter = adapters["video_llava"]
    adapter.configure(PruningSettings(pruner="none"))
    batch = adapter.prepare([Q1], [[frame(4)]])
    assert batch.modality == "image" and batch.tokens_per_frame == 16  # 4×4 patches, CLS dropped
    ours = adapter.generate(batch, max_new_tokens=6)
    with torch.inference_mode():
        ref = unmodified_generate(adapter, batch, 6)
    assert torch.equal(ours.sequences, ref[:, batch.input_ids.shape[1] :])


# ----------------------------------------------------------------------------- exact k per frame
@pytest.mark.parametrize("ratio", [0.25, 0.5])
def test_pruned_prefill_holds_exactly_k_visual_tokens_per_frame(adapter, ratio):
    family = adapter.family
    batch = adapter.prepare([Q1, Q2], [video(family, 0), video(family, 10)])
    length = batch.tokens_per_frame
    assert length == {"llava": 16, "video_llava": 17, "llava_next_video": 16}[family]  # CLS kept / 2×2 pool
    adapter.configure(settings(ratio=ratio))
    k = keep_count(ratio, length)
    with LLMSpy(adapter) as spy:
        adapter.prefill(batch)
    ids, embeds = spy.ids[0], spy.embeds[0]
    visual = visual_mask(adapter, ids)
    assert visual.sum(dim=1).tolist() == [FRAMES[family] * k] * 2
    assert embeds.shape[1] == ids.shape[1] < batch.input_ids.shape[1]
    for b, s in enumerate(adapter.last_stats):
        assert (s.tokens_per_frame_before, s.tokens_per_frame_after) == (length, k)
        assert s.visual_tokens_after == FRAMES[family] * k
        assert s.text_tokens == int(batch.attention_mask[b].sum()) - FRAMES[family] * length

    # the rows placed at the placeholders are the projected features of exactly the selected tokens
    with torch.inference_mode():
        features = adapter.encode(batch.pixel_values, batch.modality)
        query = build_queries(batch.input_ids, batch.attention_mask, adapter.model.get_input_embeddings().weight,
                              adapter.visual_token_ids, "exponential")
        n = FRAMES[family]
        mask = get_pruner("rediprune").keep_mask(features[:n], PruneParams(ratio=ratio), query=query[0])
        expected = adapter.project(features[:n][mask])
    assert torch.allclose(embeds[0][visual[0]], expected, atol=1e-5)


def test_next_video_prunes_before_the_pool_when_asked():
    adapter = load_adapter(BackboneConfig(family="llava_next_video", prune_position="before_pool"))
    adapter.configure(settings(ratio=0.25))
    batch = adapter.prepare([Q1], [video("llava_next_video", 0)])
    assert batch.tokens_per_frame == 64  # 8×8 patches, unpooled
    with LLMSpy(adapter) as spy:
        adapter.prefill(batch)
    assert int(visual_mask(adapter, spy.ids[0]).sum()) == 2 * keep_count(0.25, 64)


# ----------------------------------------------------------------------------- batching
def test_left_padded_batch_equals_each_prompt_alone(adapter):
    family = adapter.family
    adapter.configure(settings(ratio=0.25, alpha=0.5))
    questions = ["what is the color of the big circle at the top left of the image ?", "count ?"]
    visuals = [video(family, 0), video(family, 20)]
    batch = adapter.prepare(questions, visuals)
    assert batch.attention_mask[1, 0] == 0  # the short prompt is left-padded
    together = adapter.generate(batch, max_new_tokens=8)
    logits = adapter.prefill(batch)
    for b in range(2):
        alone = adapter.prepare([questions[b]], [visuals[b]])
        single = adapter.generate(alone, max_new_tokens=8)
        assert single.texts[0] == together.texts[b]
        n = single.sequences.shape[1]
        assert torch.equal(single.sequences[0], together.sequences[b, :n])
        assert single.stats[0].visual_tokens_after == together.stats[b].visual_tokens_after
        assert torch.allclose(adapter.prefill(alone)[0], logits[b], atol=1e-4)


def test_frame_independent_pruner_takes_the_batch_in_one_call(adapter, monkeypatch):
    """ReDiPrune sees all frames of a batch at once, each with its own sample's query (SPEC §2.4)."""
    from rediprune.pruning.selection import ReDiPrune

    calls = []
    real = ReDiPrune.keep_mask

    def counted(self, features, params, **kwargs):
        calls.append((features.shape[0], None if kwargs.get("query") is None else kwargs["query"].shape))
        return real(self, features, params, **kwargs)

    monkeypatch.setattr(ReDiPrune, "keep_mask", counted)
    family = adapter.family
    adapter.configure(settings(ratio=0.25, alpha=2.0))
    frames = video(family, 30)
    questions = ["what color is the circle ?", "how many squares are at the bottom of the picture ?"]
    batch = adapter.prepare(questions, [frames, frames])
    with LLMSpy(adapter) as spy:
        adapter.prefill(batch)
    n = FRAMES[family]
    assert calls == [(2 * n, (2 * n, adapter.model.get_input_embeddings().weight.shape[1]))]
    together = [spy.embeds[0][b][visual_mask(adapter, spy.ids[0])[b]] for b in range(2)]
    assert not torch.allclose(together[0], together[1])  # each sample's own query chose its tokens
    for b, question in enumerate(questions):
        with LLMSpy(adapter) as alone:
            adapter.prefill(adapter.prepare([question], [frames]))
        assert torch.allclose(alone.embeds[0][0][visual_mask(adapter, alone.ids[0])[0]], together[b], atol=1e-5)


def test_shrink_placeholder_runs_repads_on_the_left():
    ids = torch.tensor([[0, 0, 5, 9, 9, 9, 9, 6], [5, 9, 9, 9, 9, 7, 7, 6]])
    mask = (ids != 0).long()
    out, out_mask = shrink_placeholder_runs(ids, mask, [9], [torch.tensor([1, 0]), torch.tensor([2, 2])], 2, 0)
    assert out.tolist() == [[0, 0, 0, 0, 0, 5, 9, 6], [5, 9, 9, 9, 9, 7, 7, 6]]
    assert out_mask.tolist() == [[0, 0, 0, 0, 0, 1, 1, 1], [1] * 8]


# ----------------------------------------------------------------------------- the query
def test_different_questions_keep_different_tokens(adapter):
    family = adapter.family
    adapter.configure(settings(ratio=0.25, alpha=2.0))
    frames = video(family, 30)
    kept = []
    for question in ("what color is the circle ?", "how many squares are at the bottom of the picture ?"):
        batch = adapter.prepare([question], [frames])
        with LLMSpy(adapter) as spy:
            adapter.prefill(batch)
        kept.append(spy.embeds[0][0][visual_mask(adapter, spy.ids[0])[0]])
    assert kept[0].shape == kept[1].shape
    assert not torch.allclose(kept[0], kept[1])


def test_query_comes_from_the_text_after_the_last_placeholder(adapters):
    adapter = adapters["video_llava"]
    batch = adapter.prepare([Q1], [video("video_llava", 0)])
    ids = batch.input_ids[0]
    last = int(visual_mask(adapter, ids).nonzero().max())
    tail = adapter.tokenizer.decode(ids[last + 1 :])
    assert tail.split() == "what color is the circle on the left ? assistant :".split()


# ----------------------------------------------------------------------------- switching settings
def test_switching_hyperparameters_needs_no_reload(adapter):
    family = adapter.family
    model = adapter.model
    batch = adapter.prepare([Q1], [video(family, 0)])
    counts = []
    for s in (settings(ratio=0.25), settings(ratio=0.5, alpha=1.0), settings("random", ratio=0.125),
              PruningSettings(pruner="rediprune", params=PruneParams(ratio=0.25), query_strategy="average")):
        adapter.configure(s)
        adapter.prefill(batch)
        counts.append(adapter.last_stats[0].visual_tokens_after)
        assert adapter.model is model
    length = batch.tokens_per_frame
    assert counts[:3] == [FRAMES[family] * keep_count(r, length) for r in (0.25, 0.5, 0.125)]
    assert len(set(counts[:3])) == 3


def test_feature_cache_reuses_encoder_features_across_trials(adapter):
    family = adapter.family
    batch = adapter.prepare([Q1, Q2], [video(family, 0), video(family, 10)])
    adapter.configure(settings(ratio=0.25))
    plain = adapter.generate(batch, max_new_tokens=6)
    adapter.feature_cache = {}
    adapter.reset_cache_stats()
    first = adapter.generate(batch, max_new_tokens=6)
    adapter.configure(settings(ratio=0.5))
    adapter.generate(batch, max_new_tokens=6)
    n = 2 * FRAMES[family]
    assert adapter.cache_stats == {"hits": n, "misses": n}
    assert torch.equal(first.sequences, plain.sequences)
    assert len(adapter.feature_cache) == n and all(k.startswith(f"tiny/{family}|") for k in adapter.feature_cache)


def test_feature_cache_keys_do_not_depend_on_the_model_dtype():
    """encode() and generate() share cache entries in half precision too (keys hash the processor's pixels)."""
    adapter = load_adapter(BackboneConfig(family="llava", dtype="bfloat16"))
    batch = adapter.prepare([Q1], [[frame(3)]])
    adapter.feature_cache = {}
    adapter.encode(batch.pixel_values)
    adapter.configure(settings(ratio=0.25))
    adapter.generate(batch, max_new_tokens=2)
    assert adapter.cache_stats == {"hits": 1, "misses": 1}


def test_placeholder_strings_in_a_question_are_removed_everywhere(adapters):
    """The prompt, the query and CDPruner's CLIP text all see the question without ``<image>``."""
    adapter = adapters["llava"]
    plain = adapter.prepare([Q1], [[frame(0)]])
    marked = adapter.prepare([f"<image>\n{Q1} "], [[frame(0)]])
    assert marked.questions == plain.questions == [Q1]
    assert torch.equal(marked.input_ids, plain.input_ids)


# ----------------------------------------------------------------------------- post-projection baselines
def test_divprune_runs_after_projection_over_the_whole_input(adapter):
    family = adapter.family
    adapter.configure(settings("divprune", ratio=0.25))
    assert adapter.placement == Placement.POST_PROJECTION
    batch = adapter.prepare([Q1], [video(family, 0)])
    with LLMSpy(adapter) as spy:
        result = adapter.generate(batch, max_new_tokens=4)
    total = FRAMES[family] * batch.tokens_per_frame
    assert int(visual_mask(adapter, spy.ids[0]).sum()) == keep_count(0.25, total)
    assert result.stats[0].visual_tokens_after == keep_count(0.25, total)


def test_cdpruner_runs_after_projection_with_clip_relevance(adapter):
    family = adapter.family
    adapter.configure(settings("cdpruner", ratio=0.25))
    assert adapter.placement == Placement.POST_PROJECTION
    batch = adapter.prepare([Q1, Q2], [video(family, 0), video(family, 0)])
    with LLMSpy(adapter) as spy:
        result = adapter.generate(batch, max_new_tokens=4)
    k = keep_count(0.25, batch.tokens_per_frame)
    assert visual_mask(adapter, spy.ids[0]).sum(dim=1).tolist() == [FRAMES[family] * k] * 2
    assert [s.tokens_per_frame_after for s in result.stats] == [k, k]
    # the relevance follows the question: same frames, different questions, different kept rows
    rows = [spy.embeds[0][b][visual_mask(adapter, spy.ids[0])[b]] for b in range(2)]
    assert not torch.allclose(rows[0], rows[1])


def test_cdpruner_keeps_the_same_tokens_alone_and_in_a_batch(adapter):
    """CDPruner normalises relevance over each sample's frames, never over the whole batch's."""
    family = adapter.family
    adapter.configure(settings("cdpruner", ratio=0.25))
    questions, visuals = [Q1, Q2, Q1], [video(family, 0), video(family, 40), video(family, 80)]
    with LLMSpy(adapter) as spy:
        adapter.prefill(adapter.prepare(questions, visuals))
    together = [spy.embeds[0][b][visual_mask(adapter, spy.ids[0])[b]] for b in range(3)]
    for b in range(3):
        with LLMSpy(adapter) as alone:
            adapter.prefill(adapter.prepare([questions[b]], [visuals[b]]))
        assert torch.allclose(alone.embeds[0][0][visual_mask(adapter, alone.ids[0])[0]], together[b], atol=1e-5)


def test_rediprune_can_be_placed_after_projection(adapters):
    adapter = adapters["llava"]
    adapter.configure(PruningSettings(params=PruneParams(ratio=0.25), placement="post_projection"))
    assert adapter.placement == Placement.POST_PROJECTION
    batch = adapter.prepare([Q1], [[frame(1)]])
    adapter.prefill(batch)
    assert adapter.last_stats[0].visual_tokens_after == 4


# ----------------------------------------------------------------------------- bad settings
@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: PruningSettings(pruner="nope"), "pruner"),
        (lambda: PruningSettings(query_strategy="loud"), "query_strategy"),
        (lambda: PruningSettings(placement="middle"), "placement"),
        (lambda: PruningSettings(query_max_tokens=0), "query_max_tokens"),
        (lambda: PruningSettings(params={"ratio": 0.1}), "params"),
        (lambda: PruneParams(ratio=0.0), "ratio"),
        (lambda: PruneParams(alpha=-1.0), "alpha"),
        (lambda: load_adapter(BackboneConfig(family="llava", prune_position="before_pool")), "prune_position"),
        (lambda: load_adapter(BackboneConfig(family="llava", dtype="float8")), "dtype"),
        (lambda: load_adapter(BackboneConfig(family="pixtral")), "family"),
    ],
)
def test_bad_settings_raise_value_errors_naming_the_parameter(make, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        make()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_device_without_cuda_is_a_value_error():
    with pytest.raises(ValueError, match="device"):
        load_adapter(BackboneConfig(family="llava", device="cuda"))


def test_bad_inputs_raise_value_errors_naming_the_parameter(adapters):
    adapter = adapters["llava"]
    with pytest.raises(ValueError, match="questions"):
        adapter.prepare([Q1, Q2], [[frame(0)]])
    with pytest.raises(ValueError, match="modality"):
        adapter.prepare([Q1], [[frame(0)]], modality="audio")
    batch = adapter.prepare([Q1], [[frame(0)]])
    with pytest.raises(ValueError, match="max_new_tokens"):
        adapter.generate(batch, max_new_tokens=0)
    with pytest.raises(ValueError, match="settings"):
        adapter.configure({"pruner": "none"})


# ----------------------------------------------------------------------------- tiny backbones
@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_backbones_are_deterministic_real_classes_and_fast(family):
    t0 = time.perf_counter()
    model, processor = build_tiny(family)
    elapsed = time.perf_counter() - t0
    again, _ = build_tiny(family)
    assert elapsed < 2.0
    expected = {"llava": "LlavaForConditionalGeneration", "video_llava": "VideoLlavaForConditionalGeneration",
                "llava_next_video": "LlavaNextVideoForConditionalGeneration"}[family]
    assert type(model).__name__ == expected and type(model).__module__.startswith("transformers.")
    state, state2 = model.state_dict(), again.state_dict()
    assert all(torch.equal(state[k], state2[k]) for k in state)
    assert model.config.text_config.vocab_size == len(tiny_vocabulary()) == len(processor.tokenizer)


def test_tiny_vocabulary_covers_its_words():
    tokenizer = build_tiny_tokenizer()
    unk = tokenizer.unk_token_id
    ids = tokenizer(" ".join(TINY_WORDS))["input_ids"]
    assert unk not in ids and len(ids) == len(TINY_WORDS) + 1  # + <s>
    assert tokenizer("What COLOR is it?")["input_ids"][1:] == tokenizer("what color is it ?")["input_ids"][1:]


def test_a_saved_tiny_model_loads_as_a_local_checkpoint(tmp_path, adapters):
    source = adapters["video_llava"]
    source.configure(PruningSettings(pruner="none"))
    source.model.save_pretrained(tmp_path)
    source.tokenizer.save_pretrained(tmp_path)
    source.processor.image_processor.save_pretrained(tmp_path)
    loaded = load_adapter(BackboneConfig(family="video_llava", checkpoint=str(tmp_path)))
    loaded.configure(settings(ratio=0.25))
    source.configure(settings(ratio=0.25))
    frames = video("video_llava", 0)
    a = loaded.generate(loaded.prepare([Q1], [frames]), max_new_tokens=6)
    b = source.generate(source.prepare([Q1], [frames]), max_new_tokens=6)
    assert torch.equal(a.sequences, b.sequences)


def test_text_only_samples_mix_with_visual_ones(adapters):
    adapter = adapters["llava"]
    adapter.configure(settings(ratio=0.25))
    batch = adapter.prepare([Q1, Q2], [[frame(0)], []])
    result = adapter.generate(batch, max_new_tokens=4)
    assert [s.visual_tokens_after for s in result.stats] == [4, 0]
    alone = adapter.generate(adapter.prepare([Q2], [[]]), max_new_tokens=4)
    assert alone.texts[0] == result.texts[1]


# ----------------------------------------------------------------------------- dtype / device
def _half_precision_run(device: str, dtype: str):
    for family in FAMILIES:
        adapter = load_adapter(BackboneConfig(family=family, device=device, dtype=dtype))
        assert adapter.model.dtype == getattr(torch, dtype) and adapter.model.device.type == device.split(":")[0]
        batch = adapter.prepare([Q1], [video(family, 0)])
        plain = adapter.generate(batch, max_new_tokens=4)
        with torch.inference_mode():
            ref = unmodified_generate(adapter, batch, 4)
        assert torch.equal(plain.sequences, ref[:, batch.input_ids.shape[1] :].cpu())
        for pruner in ("rediprune", "divprune", "cdpruner"):
            adapter.configure(settings(pruner, ratio=0.25))
            result = adapter.generate(batch, max_new_tokens=4)
            assert result.stats[0].visual_tokens_after < result.stats[0].visual_tokens_before


def test_bfloat16_on_cpu():
    _half_precision_run("cpu", "bfloat16")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cuda_half_precision(dtype):
    _half_precision_run("cuda", dtype)
