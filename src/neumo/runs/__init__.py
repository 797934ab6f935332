"""Run folders: config, metrics, tables, artifacts, checkpoints and an atomic status."""

from neumo.runs.run import Run, default_root, find_run, list_runs

__all__ = ["Run", "default_root", "find_run", "list_runs"]
