"""``neumo lab``: run every registered study (or a selection) into one lab run and write the report.

Studies run in a local process pool (``jobs`` workers, one torch thread each); a study that crashes is
reported as ``error`` and the others go on.
"""

from __future__ import annotations

import os
import resource
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from neumo.errors import NeumoError
from neumo.report.html import write_report
from neumo.runs import Run
from neumo.runs.sinks import check_sinks
from neumo.studies.base import Verdict
from neumo.studies.registry import all_studies, get_study
from neumo.studies.runner import check_seeds, default_seeds, run_study


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have been waited for."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _run_one(sid: str, preset: str, seed: int, seeds: int, parent: str, sinks: tuple[str, ...] = ()) -> Verdict:
    """Worker entry point (a local process or a Ray task): never raises, so one study cannot take the lab down."""
    import torch

    torch.set_num_threads(1)
    t0 = time.monotonic()
    try:
        return run_study(sid, preset=preset, seed=seed, seeds=seeds, parent=Path(parent), sinks=tuple(sinks))
    except Exception as e:  # reported in the verdict table as "error"
        msg = "".join(traceback.format_exception_only(type(e), e)).strip()
        return Verdict(
            study=sid,
            claim=all_studies()[sid].claim,
            status="error",
            summary=msg,
            preset=preset,
            reason=msg,
            seeds=list(range(seed, seed + seeds)),
            elapsed_s=round(time.monotonic() - t0, 2),
        )


def default_jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_lab(
    *,
    quick: bool = True,
    only: list[str] | None = None,
    instrument: str | None = None,
    root: str | Path | None = None,
    seed: int = 0,
    seeds: int | None = None,
    jobs: int | None = None,
    on_verdict: Callable[[Verdict], None] | None = None,
    sinks: tuple[str, ...] = (),
    ray: str | None = None,
):
    """Run the selected studies and write ``report.html`` / ``report.json`` into a new lab run.

    Studies run in ``jobs`` local processes, or as Ray tasks (one CPU each) on the cluster at ``ray``
    (``local`` starts one); ``sinks`` go to every study's units."""
    preset = "quick" if quick else "full"
    ids = list(only) if only else list(all_studies())
    for sid in ids:
        get_study(sid)
    if instrument:
        ids = [s for s in ids if all_studies()[s].instrument == instrument]
    if not ids:
        raise NeumoError("no study selected; see 'neumo study list'")
    seeds = check_seeds(default_seeds(preset) if seeds is None else seeds)
    if ray is not None and jobs is not None:
        raise NeumoError(
            "--jobs sets local worker processes; with --ray the cluster schedules the studies "
            "(one CPU each): drop one of them"
        )
    jobs = default_jobs() if jobs is None else int(jobs)
    if jobs < 1:
        raise NeumoError(f"--jobs must be >= 1, got {jobs}")
    sinks = check_sinks(sinks)
    if ray is not None:
        from neumo.runs.cluster import connect, ray_map

        connect(ray)
    doc = {
        "kind": "lab",
        "preset": preset,
        "studies": ids,
        "seed": seed,
        "seeds": seeds,
        **({"jobs": jobs} if ray is None else {}),
        **({"sinks": list(sinks)} if sinks else {}),
        **({"ray": ray} if ray else {}),
    }
    lab = Run.create("lab", doc, root=root, kind="lab")
    parent = str(lab.dir / "studies")
    t0, cpu0 = time.monotonic(), _cpu_seconds()
    done: dict[str, Verdict] = {}

    def record(v: Verdict) -> None:
        done[v.study] = v
        lab.log(len(done), {"study": v.study, "verdict": v.status, "elapsed_s": v.elapsed_s})
        if on_verdict:
            on_verdict(v)

    order = sorted(ids, key=lambda s: -all_studies()[s].quick_cost_s)
    if ray is not None:
        ray_map(
            _run_one,
            [(sid, preset, seed, seeds, parent, sinks) for sid in order],
            ray,
            on_result=lambda i, v: record(v),
        )
    elif jobs == 1 or len(ids) == 1:
        for sid in ids:
            record(_run_one(sid, preset, seed, seeds, parent, sinks))
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, len(ids)), mp_context=get_context("spawn")) as pool:
            # longest first, so a long study overlaps with the short ones instead of running last
            futures = [pool.submit(_run_one, sid, preset, seed, seeds, parent, sinks) for sid in order]
            for f in as_completed(futures):
                record(f.result())
    verdicts = [done[sid] for sid in ids]
    html_path, json_path = write_report(
        lab.dir,
        [v.model_dump(mode="json") for v in verdicts],
        meta={
            "preset": preset,
            "seed": seed,
            "seeds": seeds,
            "lab_run": lab.id,
            "jobs": jobs,
            "elapsed_s": round(time.monotonic() - t0, 1),
            # CPU seconds of this process and its reaped workers (not of Ray workers): with the 1-minute load
            # average it tells a slow run on a busy machine from a slow lab
            **({"cpu_s": round(_cpu_seconds() - cpu0, 1)} if ray is None else {}),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
        studies=all_studies(),
    )
    lab.finish({s: sum(v.status == s for v in verdicts) for s in ("holds", "fails", "inconclusive", "error")})
    return lab, verdicts, html_path, json_path
