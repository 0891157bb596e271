"""lmms-eval task rediprune_demo_image (hooks in utils.py)."""
