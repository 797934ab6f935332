"""Sweeps: a base run config, a set of models and a grid of dotted overrides, expanded into one job per
(model, grid point, seed). Jobs run serially, in a local process pool, or on Ray when an address is given
(Ray is imported only then). Results are one tidy table: a row per job x eval length x metric.

Curves: ``capacity`` (accuracy vs items vs state size), ``retention`` (vs delay), ``interference``
(vs distractors), ``extrapolation`` (vs test length, trained on lengths <= L).
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Literal

import pandas as pd
from pydantic import Field, model_validator

from neumo.config import StrictModel, apply_overrides, register_kind, validate
from neumo.errors import NeumoError
from neumo.memory.train import MemoryRunConfig, train_on_task


ERROR_METRIC = "error"  # the metric of a failed job's single row; its message is in the 'error' column
MAX_JOBS = 10_000  # a sweep's (model x grid point x seed) jobs; CPU sweeps run tens to hundreds


class ModelSpec(StrictModel):
    model: str
    model_knobs: dict[str, Any] = Field(default_factory=dict)


class SweepConfig(StrictModel):
    name: str = "sweep"
    curve: Literal["capacity", "retention", "interference", "extrapolation"] = "extrapolation"
    base: MemoryRunConfig = MemoryRunConfig()
    models: dict[str, ModelSpec] = Field(default_factory=lambda: {"lstm": ModelSpec(model="lstm")})
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="dotted key into base -> values")
    x: str = Field("length", description="the curve's x axis: 'length' or a grid key")
    seeds: int = Field(3, ge=1, le=1000)
    seed: int = 0

    @model_validator(mode="after")
    def _check(self):
        if self.x != "length" and self.x not in self.grid:
            raise NeumoError(f"sweep x axis {self.x!r} must be 'length' or one of the grid keys {sorted(self.grid)}")
        if not self.models:
            raise NeumoError("a sweep needs at least one entry under 'models'")
        n = len(self.models) * self.seeds * math.prod(len(v) for v in self.grid.values())
        if n > MAX_JOBS:
            raise NeumoError(
                f"sweep {self.name!r} expands to {n} jobs, above the limit of {MAX_JOBS}; "
                "shrink the grid, the models or the seeds"
            )
        if n == 0:
            raise NeumoError(f"sweep {self.name!r} has a grid key with no values; give each at least one")
        expand(self)  # every job's knobs are typed against its task and model now, not in a worker
        return self


register_kind("memory-sweep", lambda: SweepConfig)
register_kind("memory-run", lambda: MemoryRunConfig)


def expand(cfg: SweepConfig) -> list[dict[str, Any]]:
    """Jobs as plain dicts (picklable): label, grid point, seed and the validated run config."""
    keys = list(cfg.grid)
    jobs = []
    for label, spec in cfg.models.items():
        for point in itertools.product(*(cfg.grid[k] for k in keys)):
            for i in range(cfg.seeds):
                base = cfg.base.model_dump(mode="json")
                base.update(
                    model=spec.model, model_knobs={**base["model_knobs"], **spec.model_knobs}, seed=cfg.seed + i
                )
                over = [f"{k}={_literal(v)}" for k, v in zip(keys, point)]
                doc = apply_overrides(base, over)
                run_cfg = validate(MemoryRunConfig, doc, f"sweep {cfg.name!r} point {dict(zip(keys, point))}")
                jobs.append(
                    {
                        "label": label,
                        "point": dict(zip(keys, point)),
                        "seed": cfg.seed + i,
                        "config": run_cfg.model_dump(mode="json"),
                    }
                )
    return jobs


def _literal(v: Any) -> str:
    """A value as text that ``apply_overrides`` parses back to the same value (JSON is valid YAML)."""
    import json

    return json.dumps(v)


def run_job(job: dict[str, Any]) -> list[dict[str, Any]]:
    """Train and evaluate one job; returns its tidy rows (runs in a worker process)."""
    import torch

    torch.set_num_threads(1)
    head = {"label": job["label"], "seed": job["seed"], "model": job["config"]["model"], "task": job["config"]["task"]}
    try:
        cfg = MemoryRunConfig.model_validate(job["config"])
        res = train_on_task(cfg)
    except Exception as e:  # one failing job is a row of the table (metric 'error'), not the sweep's end
        return [
            {
                **head,
                **job["point"],
                "length": None,
                "metric": ERROR_METRIC,
                "value": float("nan"),
                "error": f"{type(e).__name__}: {e}".splitlines()[0][:500],
            }
        ]
    info = {
        **head,
        "state_size": res.model.state_size(max(res.eval)),
        "n_params": res.model.num_parameters(),
        "steps": res.steps,
        "stopped_early": res.stopped_early,
        **job["point"],
    }
    return [{**info, **row, "error": None} for row in res.rows()]


def failed_jobs(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of jobs that failed (label, seed, grid point and the error's first line)."""
    return df[df["metric"] == ERROR_METRIC] if "metric" in df else df.iloc[0:0]


# imported once by the fork server, so that workers start warm (torch._dynamo alone takes seconds)
_PRELOAD = [
    "torch._dynamo",
    "neumo.memory.bench.sweep",
    "neumo.nn.recurrent",
    "neumo.nn.transformer",
    "neumo.nn.linear_attention",
    "neumo.nn.memory_transformer",
    "neumo.nn.mlp",
]


def run_jobs(
    jobs: list[dict[str, Any]],
    workers: int = 1,
    ray_address: str | None = None,
    on_done: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    if ray_address:
        return _run_ray(jobs, ray_address)
    rows: list[dict[str, Any]] = []
    if workers <= 1:
        for j in jobs:
            rows.extend(run_job(j))
            if on_done:
                on_done(1)
        return rows
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # forkserver: children fork from a clean server that imported torch once (fast, and safe with
    # OpenMP, unlike forking this process); spawn elsewhere
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(_PRELOAD)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
        for out in ex.map(run_job, jobs):
            rows.extend(out)
            if on_done:
                on_done(1)
    return rows


def _run_ray(jobs: list[dict[str, Any]], address: str) -> list[dict[str, Any]]:
    from neumo.runs.cluster import ray_map

    return [r for out in ray_map(run_job, [(j,) for j in jobs], address) for r in out]


def check_workers(workers: int, ray_address: str | None) -> None:
    if workers < 1:
        raise NeumoError(f"workers must be >= 1; got {workers}")
    if ray_address and workers > 1:
        raise NeumoError("--workers sets local processes; with --ray the cluster schedules the jobs: drop one")


def run_sweep(
    cfg: SweepConfig,
    workers: int = 1,
    ray_address: str | None = None,
    run=None,
    on_done: Callable[[int], None] | None = None,
    jobs: list[dict[str, Any]] | None = None,
) -> pd.DataFrame:
    """Run every job (``jobs``: ``expand(cfg)`` when the caller has it already); with ``run`` the table goes to
    ``tables/results.parquet`` and the curve to a PNG."""
    check_workers(workers, ray_address)
    rows = run_jobs(expand(cfg) if jobs is None else jobs, workers, ray_address, on_done)
    df = pd.DataFrame(rows)
    failed = failed_jobs(df)
    if len(failed) == len(df):
        raise NeumoError(f"all {len(df)} jobs of sweep {cfg.name!r} failed; the first: {failed['error'].iloc[0]}")
    df.insert(0, "curve", cfg.curve)
    df.insert(0, "sweep", cfg.name)
    if run is not None:
        from neumo.memory.bench.plots import curve_figure
        from neumo.memory.bench.stats import summarize

        run.write_table("results", df)
        by = ["label"] + [k for k in cfg.grid if k != cfg.x]
        summ = summarize(df, cfg.x, by)
        run.write_table("summary", summ)
        fig, _ = curve_figure(summ, cfg.x, by, title=f"{cfg.name} ({cfg.curve})")
        fig.savefig(run.artifact(f"{cfg.curve}.png"), dpi=110, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
    return df
