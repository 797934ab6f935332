"""Every job of every shipped memory sweep builds its task and model (the failure mqar_capacity.yaml had:
a grid key one model did not take failed 24 of its 36 jobs only when a worker built them)."""

from __future__ import annotations

import pytest
import yaml

from neumo.catalog import validate_file
from neumo.config import shipped_configs
from neumo.memory.bench.sweep import expand
from neumo.memory.tasks import make_task
from neumo.memory.train import MemoryRunConfig, model_for_run

SWEEPS = [p for p in shipped_configs() if (yaml.safe_load(p.read_text()) or {}).get("kind") == "memory-sweep"]


@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
def test_every_job_builds(path):
    _, cfg = validate_file(path)
    jobs = expand(cfg)
    assert jobs
    seen = set()
    for job in jobs:
        run_cfg = MemoryRunConfig.model_validate(job["config"])
        key = (run_cfg.task, repr(run_cfg.task_knobs), run_cfg.model, repr(run_cfg.model_knobs))
        if key in seen:
            continue
        seen.add(key)
        model = model_for_run(run_cfg, make_task(run_cfg.task, **run_cfg.task_knobs))
        assert model.num_parameters() > 0


@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
def test_every_distinct_job_trains_two_steps(path):
    """Each distinct (task, knobs, model, knobs) job of a shipped sweep runs end to end, shortened to two
    steps: what validates also trains and evaluates (no error row)."""
    from neumo.memory.bench.sweep import ERROR_METRIC, run_job

    _, cfg = validate_file(path)
    seen = set()
    for job in expand(cfg):
        c = job["config"]
        key = (c["task"], repr(c["task_knobs"]), c["model"], repr(c["model_knobs"]))
        if key in seen:
            continue
        seen.add(key)
        short = {**job, "config": {**c, "train": {**c["train"], "steps": 2, "eval_every": 2}, "eval_size": 4}}
        rows = run_job(short)
        assert rows and all(r["metric"] != ERROR_METRIC for r in rows), rows[0].get("error")
