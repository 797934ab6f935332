"""Sweeps that report curves (capacity, retention, interference, extrapolation) with 95% intervals.

Importing this module registers the config kinds ``memory-sweep`` and ``memory-run``.
"""

from neumo.memory.bench.stats import mean_ci, summarize
from neumo.memory.bench.sweep import ModelSpec, SweepConfig, expand, run_job, run_jobs, run_sweep

__all__ = ["ModelSpec", "SweepConfig", "expand", "mean_ci", "run_job", "run_jobs", "run_sweep", "summarize"]
