"""Run a registered study over seeds and null arms into a run folder and write its ``verdict.json``.

Layout of a study run::

    study-<id>-<stamp>-<hex>/
        config.yaml              {study, preset, seed, seeds, checkpoint_every, config}
        artifacts/               figures of the first seed's treatment
        units/seed<k>-<arm>/     one run folder per (seed, arm): metrics, checkpoints, tables,
                                 and measurement.json once the unit is complete
        verdict.json

``--resume`` keeps every complete unit, continues the interrupted one (from its checkpoint when the
study checkpoints, from scratch otherwise) and runs the rest; no unit's metrics are shared or lost.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
import traceback
from pathlib import Path
from typing import Any

from neumo.config import apply_overrides, deep_merge, validate
from neumo.errors import NeumoError
from neumo.runs import Run, find_run
from neumo.runs.atomic import atomic_write_json
from neumo.studies.base import DEFAULT_SEEDS, TREATMENT, Measurement, Study, StudyContext, Verdict
from neumo.studies.judge import judge_units
from neumo.studies.registry import all_studies, get_study

MAX_SEEDS = 100


def resolve_config(
    study: type[Study], preset: str, overrides: list[str] | None = None, file_doc: dict[str, Any] | None = None
):
    """Defaults (= full) <- preset <- config file <- ``--set`` overrides; validated strictly."""
    if preset not in ("quick", "full"):
        raise NeumoError(f"preset must be 'quick' or 'full', got {preset!r}")
    # merge onto the study's own defaults, so a preset that sets one field of a nested section keeps the
    # study's values for the others (not the section class's defaults)
    data = deep_merge(study.Config().model_dump(mode="json"), study.presets.get(preset, {}))
    data = deep_merge(data, file_doc or {})
    data = apply_overrides(data, overrides)
    return validate(study.Config, data, f"config of study {study.id!r}")


def default_seeds(preset: str) -> int:
    return DEFAULT_SEEDS.get(preset, 3)


def check_seeds(seeds: int) -> int:
    seeds = int(seeds)
    if not 1 <= seeds <= MAX_SEEDS:
        raise NeumoError(f"--seeds must be between 1 and {MAX_SEEDS}, got {seeds}")
    return seeds


def arms_of(study: type[Study]) -> list[str]:
    return [TREATMENT, *study.nulls]


def _unit_dir(run: Run, seed: int, arm: str) -> Path:
    return run.dir / "units" / f"seed{seed}-{arm}"


def _run_unit(
    study: Study,
    cfg,
    run: Run,
    seed: int,
    arm: str,
    *,
    preset: str,
    progress: bool,
    checkpoint_every: int,
    resume: bool,
    keep_figures: bool,
    figures: list[str],
) -> Measurement:
    udir = _unit_dir(run, seed, arm)
    done = udir / "measurement.json"
    if done.is_file():
        return Measurement.from_json(json.loads(done.read_text(encoding="utf-8")))
    cont = False
    if udir.exists():
        if resume and type(study).supports_checkpoints:
            unit, cont = Run.open(udir), True
        else:  # a unit that cannot continue starts again from nothing
            shutil.rmtree(udir)
    if not cont:
        unit = Run.create_at(
            udir, f"{study.id}-seed{seed}-{arm}", {"seed": seed, "arm": arm}, kind="unit", sinks=tuple(run.sinks)
        )
    ctx = StudyContext(
        run=unit,
        seed=seed,
        arm=arm,
        preset=preset,
        resume=cont,
        progress=progress,
        checkpoint_every=checkpoint_every,
        study_dir=run.dir,
        keep_figures=keep_figures,
    )
    m = study.measure(cfg, ctx)
    figures.extend(f for f in ctx.figures if f not in figures)
    atomic_write_json(done, m.to_json())
    unit.finish({k: v for k, v in m.values.items() if isinstance(v, (int, float))})
    return m


def run_study(
    study_id: str,
    *,
    preset: str = "quick",
    overrides: list[str] | None = None,
    file_doc: dict[str, Any] | None = None,
    seeds: int | None = None,
    seed: int = 0,
    root: str | Path | None = None,
    parent: Path | None = None,
    resume: str | None = None,
    progress: bool = False,
    checkpoint_every: int | None = None,
    force: bool = False,
    sinks: tuple[str, ...] = (),
    ray: str | None = None,
) -> Verdict:
    """Run ``study_id`` over ``seeds`` seeds (default: 3 quick, 5 full) and its nulls; returns the verdict
    and writes ``verdict.json`` in the run folder.

    With ``resume`` (a run folder or id) the run continues with the config saved in it; ``force`` takes over
    a run whose owner is on another host (its liveness cannot be checked from here).
    """
    if force and resume is None:
        raise NeumoError("--force only applies with --resume (it takes over a run owned on another host)")
    if ray is not None:  # connect (or start a local cluster) before any run folder exists
        from neumo.runs.cluster import connect

        connect(ray)
    if resume is not None:
        if overrides or file_doc or seeds is not None or checkpoint_every or sinks:
            raise NeumoError(
                "--resume continues a run with its saved config; drop --set/--config/--seeds/"
                "--checkpoint-every/--sink (or start a new run with them)"
            )
        run = find_run(resume, root)
        saved = run.config
        if not isinstance(saved, dict) or "study" not in saved or not isinstance(saved.get("config"), dict):
            raise NeumoError(
                f"run {run.id!r} is not a study run (its config.yaml has no study and config); "
                "it cannot be resumed with 'study run'"
            )
        study_cls = get_study(saved["study"])
        cfg = validate(study_cls.Config, saved["config"], f"saved config of {run.id!r}")
        preset, seed = saved.get("preset", "quick"), int(saved.get("seed", 0))
        n_seeds = check_seeds(saved.get("seeds", 1))
        state = run.status()["state"]
        if state == "complete":
            raise NeumoError(f"run {run.id!r} is already complete; nothing to resume")
        if state == "corrupt":
            raise NeumoError(f"run {run.id!r} is corrupt ({run.status().get('reason')}); start a new run")
        st = run.status()
        if state == "running" and (st.get("host") == socket.gethostname() or not force):
            where = (
                "its process is alive"
                if st.get("host") == socket.gethostname()
                else f"on host {st.get('host')!r}, which cannot be checked from here; pass --force if it is gone"
            )
            raise NeumoError(f"run {run.id!r} is still running ({where}); wait for it or stop it")
        ckpt = int(saved.get("checkpoint_every", 0))
        run.lock(force=force)  # one writer: a second live resume is refused here, a dead owner's lock is taken over
        run.mark_running()
    else:
        study_cls = get_study(study_id)
        n_seeds = check_seeds(default_seeds(preset) if seeds is None else seeds)
        ckpt = int(checkpoint_every or 0)
        if ckpt < 0:
            raise NeumoError(f"--checkpoint-every must be >= 0, got {ckpt}")
        if ckpt and not study_cls.supports_checkpoints:
            raise NeumoError(
                f"study {study_cls.id!r} does not checkpoint; drop --checkpoint-every "
                "(studies that do: " + ", ".join(s for s, c in all_studies().items() if c.supports_checkpoints) + ")"
            )
        cfg = resolve_config(study_cls, preset, overrides, file_doc)
        doc = {
            "study": study_cls.id,
            "preset": preset,
            "seed": seed,
            "seeds": n_seeds,
            "checkpoint_every": ckpt,
            **({"sinks": list(sinks)} if sinks else {}),
            "config": cfg.model_dump(mode="json"),
        }
        run = Run.create(
            f"study-{study_cls.id}", doc, root=root, kind="study", parent=parent, sinks=tuple(sinks)
        ).lock()
    seeds_list = [seed + i for i in range(n_seeds)]
    study = study_cls()
    t0 = time.monotonic()
    units: list[dict[str, Measurement]] = []
    figures: list[str] = []
    n_done = 0
    if resume is not None:  # the study-level log holds one row per unit: rewrite it, never duplicate
        run.rewind(0)
    try:
        if ray is not None:
            units = _units_on_ray(
                study_cls,
                cfg,
                run,
                seeds_list,
                ray,
                preset=preset,
                checkpoint_every=ckpt,
                resume=resume is not None,
                figures=figures,
            )
        for i, s in enumerate(seeds_list if ray is None else []):
            unit: dict[str, Measurement] = {}
            for arm in arms_of(study_cls):
                inline = unit[TREATMENT].nulls if TREATMENT in unit else {}
                if arm in inline:
                    continue
                unit[arm] = _run_unit(
                    study,
                    cfg,
                    run,
                    s,
                    arm,
                    preset=preset,
                    progress=progress,
                    checkpoint_every=ckpt,
                    resume=resume is not None,
                    keep_figures=(i == 0 and arm == TREATMENT),
                    figures=figures,
                )
                n_done += 1
                run.log(n_done, {"seed": s, "arm": arm, "unit_done": True})
            units.append(unit)
    except KeyboardInterrupt:
        run.fail("interrupted by the user", state="interrupted")
        raise
    except NeumoError as e:
        run.fail(str(e))
        raise
    except Exception as e:
        run.fail("".join(traceback.format_exception_only(type(e), e)).strip())
        raise
    if not figures:  # a resumed run keeps the figures its first unit saved
        figures = sorted(str(p.relative_to(run.dir)) for p in (run.dir / "artifacts").glob("*.png"))
    verdict = judge_units(study, cfg, units, seeds_list)
    verdict = verdict.model_copy(
        update={
            "preset": preset,
            "figures": figures,
            "elapsed_s": round(time.monotonic() - t0, 2),
            "run_dir": str(run.dir),
        }
    )
    atomic_write_json(run.dir / "verdict.json", verdict.model_dump(mode="json"))
    run.finish({"verdict": verdict.status, **{c.name: c.mean for c in verdict.checks}})
    return verdict


def _ray_unit(
    study_id: str,
    cfg_json: dict[str, Any],
    run_dir: str,
    seed: int,
    arm: str,
    preset: str,
    checkpoint_every: int,
    resume: bool,
    keep_figures: bool,
) -> tuple[dict[str, Any], list[str]]:
    """One (seed, arm) unit in a Ray worker: the same code and folder as a local unit."""
    import torch

    torch.set_num_threads(1)
    study_cls = get_study(study_id)
    cfg = study_cls.Config.model_validate(cfg_json)
    figures: list[str] = []
    m = _run_unit(
        study_cls(),
        cfg,
        Run.open(run_dir),
        seed,
        arm,
        preset=preset,
        progress=False,
        checkpoint_every=checkpoint_every,
        resume=resume,
        keep_figures=keep_figures,
        figures=figures,
    )
    return m.to_json(), figures


def _units_on_ray(
    study_cls,
    cfg,
    run: Run,
    seeds: list[int],
    address: str,
    *,
    preset: str,
    checkpoint_every: int,
    resume: bool,
    figures: list[str],
) -> list[dict[str, Measurement]]:
    """Every seed's treatment as one Ray task, then the nulls it did not return inline; the study log gets
    one row per unit in the local order, so a Ray run and a local run write the same folder."""
    from neumo.runs.cluster import ray_map

    cfg_json = cfg.model_dump(mode="json")

    def wave(pairs: list[tuple[int, str]]) -> list[Measurement]:
        jobs = [
            (
                study_cls.id,
                cfg_json,
                str(run.dir),
                s,
                arm,
                preset,
                checkpoint_every,
                resume,
                s == seeds[0] and arm == TREATMENT,
            )
            for s, arm in pairs
        ]
        out = []
        for m_json, figs in ray_map(_ray_unit, jobs, address):
            figures.extend(f for f in figs if f not in figures)
            out.append(Measurement.from_json(m_json))
        return out

    units = [{TREATMENT: m} for m in wave([(s, TREATMENT) for s in seeds])]
    rest = [(i, arm) for i, u in enumerate(units) for arm in arms_of(study_cls)[1:] if arm not in u[TREATMENT].nulls]
    for (i, arm), m in zip(rest, wave([(seeds[i], arm) for i, arm in rest])):
        units[i][arm] = m
    n = 0
    for s, u in zip(seeds, units):
        for arm in (a for a in arms_of(study_cls) if a in u):
            n += 1
            run.log(n, {"seed": s, "arm": arm, "unit_done": True})
    return units


def load_units(run_dir: str | Path) -> tuple[list[dict[str, Measurement]], list[int]]:
    """The complete units of a study run folder as ``(units, seeds)`` (``units[i][arm]``), e.g. to re-judge
    them with :func:`neumo.studies.judge.judge_units` and a null in the treatment's place."""
    run = Run.open(run_dir)
    saved = run.config
    seed, n = int(saved.get("seed", 0)), int(saved.get("seeds", 1))
    units, seeds = [], []
    for s in range(seed, seed + n):
        unit = {}
        for p in sorted((run.dir / "units").glob(f"seed{s}-*/measurement.json")):
            arm = p.parent.name.split("-", 1)[1]
            unit[arm] = Measurement.from_json(json.loads(p.read_text(encoding="utf-8")))
        if unit:
            units.append(unit)
            seeds.append(s)
    return units, seeds


def last_verdicts(root: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The newest ``verdict.json`` per study under ``root`` (study runs and lab runs)."""
    from neumo.runs import default_root

    root = Path(root) if root is not None else default_root()
    found: dict[str, tuple[float, dict[str, Any]]] = {}
    if not root.is_dir():
        return {}
    for p in list(root.glob("*/verdict.json")) + list(root.glob("*/studies/*/verdict.json")):
        try:
            v = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(v, dict):
            continue
        t = p.stat().st_mtime
        if v.get("study") in all_studies() and (v["study"] not in found or t > found[v["study"]][0]):
            found[v["study"]] = (t, v)
    return {k: v for k, (_, v) in found.items()}


__all__ = ["arms_of", "check_seeds", "default_seeds", "last_verdicts", "load_units", "resolve_config", "run_study"]
