"""The lmms-eval model ``rediprune``: any lmms-eval task through a pruned backbone adapter.

Usage::

    from lmms_eval.evaluator import simple_evaluate
    from rediprune.evaluation.lmms_model import EvalSession, open_session, register

    register()                                     # MODEL_REGISTRY_V2 now resolves "rediprune"
    session = EvalSession(adapter, modality="image", num_frames=8, batch_size=1)
    with open_session(session) as key:
        results = simple_evaluate(model="rediprune", model_args=f"session={key}", tasks=["pope"])
    session.records                                # one SampleRecord (token counts, timing) per generation

lmms-eval builds the model object from its registry and, after generating, calls ``lm.clean()``, which
deletes every ``nn.Module`` attribute of that object. The loaded model therefore lives in an
:class:`EvalSession` (a plain object, found through a key in ``model_args``) and never in the lmms-eval
object, so a sweep worker keeps it loaded across evaluations. The session also carries the per-sample
statistics back, since ``simple_evaluate`` does not return the model object.

An error inside generation is never turned into an empty answer: with ``on_error="fail"`` it stops the
evaluation (:class:`GenerationError`); with ``on_error="count"`` the sample's answer is
``ERROR_ANSWER``, the error is recorded in ``session.errors`` and counted in the results.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from PIL import Image

MODEL_ID = "rediprune"
ERROR_ANSWER = "[generation error]"


class GenerationError(RuntimeError):
    """Generation failed on a sample and the run's error policy is ``fail``."""


@dataclass
class SampleRecord:
    """What one generation cost: the fields of the adapter's SampleStats plus where it came from.

    A failed sample (``error`` set) keeps the zero defaults and is left out of the token metrics.
    """

    task: str
    doc_id: int
    frames: int = 0
    tokens_per_frame_before: int | None = None  # L
    tokens_per_frame_after: float | None = None  # mean kept per frame
    visual_tokens_before: int = 0
    visual_tokens_after: int = 0
    text_tokens: int = 0
    selection_seconds: float = 0.0
    query_seconds: float = 0.0
    error: str | None = None


@dataclass
class EvalSession:
    """Everything one evaluation shares with the lmms-eval model object, held by plain reference."""

    adapter: Any  # a configured rediprune.models adapter
    modality: str = "image"  # "image": each visual is one image; "video": the visuals are one video's frames
    num_frames: int = 8  # frames sampled from each video
    batch_size: int = 1
    on_error: str = "fail"  # "fail" or "count"
    max_new_tokens: int | None = None  # cap on the task's max_new_tokens
    capture: int = 0  # keep the first N (question, frames) inputs for timing and FLOPs passes
    log: Callable[[str], None] = print
    records: list[SampleRecord] = field(default_factory=list)
    captured: list[tuple[str, list[Image.Image]]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    _warned: set[str] = field(default_factory=set)

    def warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.log(f"warning: {message}")


_SESSIONS: dict[str, EvalSession] = {}
_LOCK = threading.Lock()
_COUNTER = itertools.count()


@contextlib.contextmanager
def open_session(session: EvalSession) -> Iterator[str]:
    """Make ``session`` reachable as ``model_args=f"session={key}"`` for the duration of the block."""
    with _LOCK:
        key = f"s{next(_COUNTER)}"
        _SESSIONS[key] = session
    try:
        yield key
    finally:
        with _LOCK:
            _SESSIONS.pop(key, None)


def register() -> None:
    """Register ``rediprune`` in lmms-eval's model registry (idempotent)."""
    from lmms_eval.models import MODEL_REGISTRY_V2
    from lmms_eval.models.registry_v2 import ModelManifest

    MODEL_REGISTRY_V2.register_manifest(
        ModelManifest(model_id=MODEL_ID, simple_class_path=f"{__name__}.RediPruneLMM"), overwrite=True
    )


class _SingleProcess:
    """Stands in for accelerate's Accelerator, which lmms-eval creates when a model has none."""

    is_main_process = True
    is_local_main_process = True
    process_index = 0
    local_process_index = 0
    num_processes = 1

    def wait_for_everyone(self) -> None:
        pass

    def gather(self, tensor: Any) -> Any:
        return tensor


def load_video_frames(path: str, frames: int) -> list[Image.Image]:
    """``frames`` RGB frames sampled uniformly from a video file (PyAV)."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("reading video files needs PyAV: pip install av") from exc
    with av.open(path) as container:
        decoded = [f.to_image() for f in container.decode(video=0)]
    if not decoded:
        raise ValueError(f"video {path!r} has no frames")
    return sample_frames(decoded, frames)


def sample_frames(frames: list[Image.Image], count: int) -> list[Image.Image]:
    """``count`` frames at uniformly spaced indices (all of them when there are fewer)."""
    if len(frames) <= count:
        return list(frames)
    return [frames[i] for i in np.linspace(0, len(frames) - 1, count).round().astype(int)]


def to_frames(visual: Any, modality: str, num_frames: int) -> list[Image.Image]:
    """A doc's visuals (what ``doc_to_visual`` returned) as the frames of one sample."""
    items = visual if isinstance(visual, (list, tuple)) else [visual]
    items = [v for v in items if v is not None]
    if modality == "video":
        if len(items) == 1 and isinstance(items[0], str):
            return load_video_frames(items[0], num_frames)
        if all(isinstance(v, Image.Image) for v in items):
            return sample_frames([v.convert("RGB") for v in items], num_frames)
        if all(isinstance(v, str) for v in items):
            raise ValueError(f"a video doc gave {len(items)} video paths; expected one video per doc")
    elif all(isinstance(v, Image.Image) for v in items):
        return [v.convert("RGB") for v in items]
    kinds = sorted({type(v).__name__ for v in items})
    raise ValueError(f"visuals of types {kinds} are not allowed for dataset.modality={modality!r}")


def cut_at(text: str, until: list[str]) -> str:
    """``text`` up to the first stop string of ``until``, stripped."""
    for stop in until:
        if stop:
            text = text.split(stop, 1)[0]
    return text.strip()


class RediPruneLMM(lmms):
    """lmms-eval simple model over an :class:`EvalSession`; built by lmms-eval as ``rediprune``."""

    is_simple = True

    def __init__(self, session: str = "", **_: Any) -> None:
        super().__init__()
        if session not in _SESSIONS:
            raise ValueError(
                f"session={session!r} is not an open evaluation session; build this model through "
                "rediprune.evaluation.run_evaluation or open_session(EvalSession(...))"
            )
        self._session = _SESSIONS[session]  # plain object: lm.clean() leaves it (and the model) alone
        self.accelerator = _SingleProcess()
        self.batch_size_per_gpu = self._session.batch_size

    @property
    def session(self) -> EvalSession:
        return self._session

    # -- lmms-eval API -------------------------------------------------------------------------------
    def loglikelihood(self, requests: list[Instance]) -> list[tuple[float, bool]]:
        tasks = sorted({r.task_name for r in requests if getattr(r, "task_name", None)})
        raise NotImplementedError(
            f"the rediprune model only generates text; task(s) {', '.join(tasks) or '?'} ask for "
            "loglikelihood — use a generate_until variant (e.g. egoschema_subset, not egoschema_subset_mcppl)"
        )

    def generate_until(self, requests: list[Instance]) -> list[str]:
        answers: list[str | None] = [None] * len(requests)
        groups: dict[str, list[int]] = {}
        for i, req in enumerate(requests):
            _, gen_kwargs, _, _, task, split = req.args
            key = json.dumps([task, split, gen_kwargs], sort_keys=True, default=str)
            groups.setdefault(key, []).append(i)
        for indices in groups.values():
            for start in range(0, len(indices), self._session.batch_size):
                chunk = indices[start : start + self._session.batch_size]
                for i, text in zip(chunk, self._generate_chunk([requests[i].args for i in chunk])):
                    answers[i] = text
        return answers  # type: ignore[return-value]

    def generate_until_multi_round(self, requests: list[Instance]) -> list[list[str]]:
        out = []
        for req in requests:
            context, gen_kwargs, doc_to_visual, doc_to_text, doc_id, task, split = req.args
            doc = self.task_dict[task][split][doc_id]
            visual, rounds, info = doc_to_visual(doc), [], None
            round_idx = 0
            while True:
                if round_idx > 0:
                    visual, context, terminal, _, info = doc_to_text(
                        doc, previous_output=list(rounds), round_idx=round_idx, previous_round_info=info
                    )
                    if terminal:
                        break
                args = (context, dict(gen_kwargs), lambda _doc, v=visual: v, doc_id, task, split)
                rounds.append(self._generate_chunk([args])[0])
                round_idx += 1
            out.append(rounds)
        return out

    # -- generation ------------------------------------------------------------------------------------
    def _generate_chunk(self, chunk: list[tuple]) -> list[str]:
        """Answers of one batch of generate_until args; on error, policy ``fail`` raises, ``count`` retries
        each sample alone so that only the failing ones are marked."""
        s = self._session
        try:
            return self._generate(chunk)
        except Exception as exc:  # noqa: BLE001 - re-raised or recorded, never swallowed
            where = ", ".join(f"{a[4]} doc {a[3]}" for a in chunk)
            if s.on_error != "count":
                raise GenerationError(f"generation failed on {where}: {type(exc).__name__}: {exc}") from exc
            if len(chunk) > 1:
                return [self._generate_chunk([args])[0] for args in chunk]
            _, _, _, doc_id, task, _ = chunk[0]
            message = f"{type(exc).__name__}: {exc}"
            s.errors.append({"task": task, "doc_id": doc_id, "error": message})
            s.records.append(SampleRecord(task=task, doc_id=doc_id, error=message))
            s.log(f"error on {task} doc {doc_id} (counted): {message}")
            return [ERROR_ANSWER]

    def _generate(self, chunk: list[tuple]) -> list[str]:
        s = self._session
        contexts, all_kwargs, doc_to_visuals, doc_ids, tasks, splits = zip(*chunk)
        gen_kwargs = dict(all_kwargs[0])
        questions, visuals = [], []
        for context, to_visual, doc_id, task, split in zip(contexts, doc_to_visuals, doc_ids, tasks, splits):
            doc = self.task_dict[task][split][doc_id]
            visuals.append(to_frames(to_visual(doc), s.modality, s.num_frames))
            questions.append(context)  # the adapter removes visual placeholders and places its own
        until = gen_kwargs.get("until") or []
        until = [until] if isinstance(until, str) else list(until)
        max_new = int(gen_kwargs.get("max_new_tokens", 128))
        if s.max_new_tokens is not None:
            max_new = min(max_new, s.max_new_tokens)
        if gen_kwargs.get("do_sample") or float(gen_kwargs.get("temperature", 0) or 0) > 0:
            s.warn_once("the task asks for sampling; the rediprune model always decodes greedily")
        batch = s.adapter.prepare(questions, visuals, modality=s.modality)
        result = s.adapter.generate(batch, max_new)
        texts = [cut_at(t, until) for t in result.texts]
        if len(texts) != len(chunk) or len(result.stats) != len(chunk):
            raise RuntimeError(f"adapter returned {len(texts)} texts / {len(result.stats)} stats for {len(chunk)} prompts")
        for stats, doc_id, task in zip(result.stats, doc_ids, tasks):
            s.records.append(SampleRecord(task=task, doc_id=doc_id, **asdict(stats)))
        for q, v in zip(questions, visuals):
            if len(s.captured) < s.capture:
                s.captured.append((q, v))
        return texts


__all__ = [
    "ERROR_ANSWER",
    "MODEL_ID",
    "EvalSession",
    "GenerationError",
    "RediPruneLMM",
    "SampleRecord",
    "open_session",
    "register",
    "to_frames",
]
