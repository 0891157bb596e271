"""lmms-eval task rediprune_tiny_video (hooks in utils.py)."""
