"""lmms-eval hooks of the bundled task ``rediprune_tiny_video``: a shape moving over 8 drawn frames."""
from rediprune.evaluation.tiny_data import exact_match, render_frames

FRAMES = 8  # frames drawn per doc; the model bridge samples the backbone's frame count from them


def doc_to_visual(doc):
    return render_frames(doc, FRAMES)


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}{kwargs.get('post_prompt', '')}"


def process_results(doc, results):
    return {"exact_match": exact_match(results[0], doc["answer"])}
