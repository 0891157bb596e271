"""Bundled lmms-eval tasks (one folder each: task YAML, utils.py hooks, JSONL docs); pass this folder as include_path."""
