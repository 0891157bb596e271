"""lmms-eval hooks of the bundled task ``rediprune_tiny_image``: one drawn shape per doc, one-word answers."""
from rediprune.evaluation.tiny_data import exact_match, render_image


def doc_to_visual(doc):
    return [render_image(doc)]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}{kwargs.get('post_prompt', '')}"


def process_results(doc, results):
    return {"exact_match": exact_match(results[0], doc["answer"])}
