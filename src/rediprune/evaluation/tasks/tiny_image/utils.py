"""lmms-eval hooks of the bundled task ``rediprune_tiny_image``: one drawn shape per doc, one-word answers."""
from rediprune.evaluation.tiny_data import doc_to_text, process_results, render_image

__all__ = ["doc_to_text", "doc_to_visual", "process_results"]


def doc_to_visual(doc):
    return [render_image(doc)]
