"""lmms-eval hooks of the bundled task ``rediprune_demo_image`` (see ``rediprune.evaluation.demo_tasks``)."""
from rediprune.evaluation.demo_tasks import doc_to_text, doc_to_visual_image as doc_to_visual, process_results

__all__ = ["doc_to_text", "doc_to_visual", "process_results"]
