"""lmms-eval hooks of the bundled task ``rediprune_demo_video`` (see ``rediprune.evaluation.demo_tasks``)."""
from rediprune.evaluation.demo_tasks import doc_to_text, doc_to_visual_video as doc_to_visual, process_results

__all__ = ["doc_to_text", "doc_to_visual", "process_results"]
