"""lmms-eval task rediprune_demo_video (hooks in utils.py)."""
