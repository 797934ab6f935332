"""Run a registered study (one or several seeds) into a run folder and write its ``verdict.json``."""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path
from typing import Any

from neumo.config import apply_overrides, deep_merge, validate
from neumo.errors import NeumoError
from neumo.runs import Run, find_run
from neumo.runs.atomic import atomic_write_json
from neumo.studies.base import Study, StudyContext, Verdict
from neumo.studies.registry import all_studies, get_study


def resolve_config(study: type[Study], preset: str, overrides: list[str] | None = None,
                   file_doc: dict[str, Any] | None = None):
    """Defaults (= full) <- preset <- config file <- ``--set`` overrides; validated strictly."""
    if preset not in ("quick", "full"):
        raise NeumoError(f"preset must be 'quick' or 'full', got {preset!r}")
    # merge onto the study's own defaults, so a preset that sets one field of a nested section keeps the
    # study's values for the others (not the section class's defaults)
    data = deep_merge(study.Config().model_dump(mode="json"), study.presets.get(preset, {}))
    data = deep_merge(data, file_doc or {})
    data = apply_overrides(data, overrides)
    return validate(study.Config, data, f"config of study {study.id!r}")


def _aggregate(verdicts: list[Verdict], seeds: list[int]) -> Verdict:
    if len(verdicts) == 1:
        return verdicts[0]
    statuses = {v.status for v in verdicts}
    status = statuses.pop() if len(statuses) == 1 else "inconclusive"
    measured: dict[str, Any] = {}
    for k in verdicts[0].measured:
        vals = [v.measured.get(k) for v in verdicts]
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vals):
            measured[k] = sum(vals) / len(vals)
            measured[f"{k}/per_seed"] = vals
    base = verdicts[0]
    summary = f"{len(verdicts)} seeds: " + ", ".join(v.status for v in verdicts) + ". " + base.summary
    return base.model_copy(update={"status": status, "measured": measured, "summary": summary,
                                   "seeds": seeds, "figures": base.figures})


def run_study(study_id: str, *, preset: str = "quick", overrides: list[str] | None = None,
              file_doc: dict[str, Any] | None = None, seeds: int = 1, seed: int = 0,
              root: str | Path | None = None, parent: Path | None = None, resume: str | None = None,
              progress: bool = False, checkpoint_every: int | None = None) -> Verdict:
    """Run ``study_id``; returns its verdict and writes ``verdict.json`` in the run folder.

    With ``resume`` (a run folder or id), the study continues that run from its last checkpoint with the
    config saved in it; nothing logged before that checkpoint is repeated.
    """
    if resume is not None:
        run = find_run(resume, root)
        saved = run.config
        if "study" not in saved:
            raise NeumoError(f"run {run.id!r} is not a study run; it cannot be resumed with 'study run'")
        study = get_study(saved["study"])
        cfg = validate(study.Config, saved["config"], f"saved config of {run.id!r}")
        preset, seed, seeds_list = saved.get("preset", "quick"), saved.get("seed", 0), [saved.get("seed", 0)]
        if run.status()["state"] == "complete":
            raise NeumoError(f"run {run.id!r} is already complete; nothing to resume")
        ckpt = saved.get("checkpoint_every", 0)
    else:
        if seeds < 1:
            raise NeumoError(f"--seeds must be >= 1, got {seeds}")
        study = get_study(study_id)
        cfg = resolve_config(study, preset, overrides, file_doc)
        seeds_list = [seed + i for i in range(seeds)]
        ckpt = int(checkpoint_every or 0)
        doc = {"study": study.id, "preset": preset, "seed": seed, "seeds": seeds, "checkpoint_every": ckpt,
               "config": cfg.model_dump(mode="json")}
        run = Run.create(f"study-{study.id}", doc, root=root, kind="study", parent=parent)
    t0 = time.monotonic()
    verdicts = []
    try:
        for s in seeds_list:
            ctx = StudyContext(run=run, seed=s, preset=preset, resume=resume is not None, progress=progress,
                               checkpoint_every=ckpt)
            v = study().run(cfg, ctx)
            verdicts.append(v.model_copy(update={"figures": list(dict.fromkeys(v.figures + ctx.figures))}))
    except KeyboardInterrupt:
        run.fail("interrupted by the user", state="interrupted")
        raise
    except NeumoError as e:
        run.fail(str(e))
        raise
    except Exception as e:
        run.fail("".join(traceback.format_exception_only(type(e), e)).strip())
        raise
    verdict = _aggregate(verdicts, seeds_list)
    verdict = verdict.model_copy(update={
        "study": study.id, "claim": study.claim, "preset": preset, "seeds": seeds_list,
        "elapsed_s": round(time.monotonic() - t0, 2), "run_dir": str(run.dir)})
    atomic_write_json(run.dir / "verdict.json", verdict.model_dump(mode="json"))
    run.finish({"verdict": verdict.status, **{k: v for k, v in verdict.measured.items()
                                               if isinstance(v, (int, float))}})
    return verdict


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
        except (OSError, json.JSONDecodeError):
            continue
        t = p.stat().st_mtime
        if v.get("study") in all_studies() and (v["study"] not in found or t > found[v["study"]][0]):
            found[v["study"]] = (t, v)
    return {k: v for k, (_, v) in found.items()}
