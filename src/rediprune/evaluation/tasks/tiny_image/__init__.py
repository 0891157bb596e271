"""lmms-eval task rediprune_tiny_image (hooks in utils.py)."""
