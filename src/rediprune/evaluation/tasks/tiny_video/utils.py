"""lmms-eval hooks of the bundled task ``rediprune_tiny_video``: a shape moving over 8 drawn frames."""
from rediprune.evaluation.tiny_data import doc_to_text, process_results, render_frames

__all__ = ["doc_to_text", "doc_to_visual", "process_results"]

FRAMES = 8  # frames drawn per doc; the model bridge samples the backbone's frame count from them


def doc_to_visual(doc):
    return render_frames(doc, FRAMES)
