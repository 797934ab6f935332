"""``neumo lab``: run every registered study (or a selection) into one lab run and write the report."""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Callable

from neumo.errors import NeumoError
from neumo.report.html import write_report
from neumo.runs import Run
from neumo.studies.base import Verdict
from neumo.studies.registry import all_studies, get_study
from neumo.studies.runner import run_study


def run_lab(*, quick: bool = True, only: list[str] | None = None, instrument: str | None = None,
            root: str | Path | None = None, seed: int = 0,
            on_verdict: Callable[[Verdict], None] | None = None, progress: bool = False):
    """Run the selected studies; a study that crashes is reported as ``error`` and the lab goes on."""
    preset = "quick" if quick else "full"
    ids = list(only) if only else list(all_studies())
    for sid in ids:
        get_study(sid)
    if instrument:
        ids = [s for s in ids if all_studies()[s].instrument == instrument]
    if not ids:
        raise NeumoError("no study selected; see 'neumo study list'")
    lab = Run.create("lab", {"kind": "lab", "preset": preset, "studies": ids, "seed": seed}, root=root, kind="lab")
    verdicts = []
    t0 = time.monotonic()
    for sid in ids:
        s0 = time.monotonic()
        try:
            v = run_study(sid, preset=preset, seed=seed, parent=lab.dir / "studies", progress=progress)
        except Exception as e:  # a broken study must not hide the others' verdicts
            msg = "".join(traceback.format_exception_only(type(e), e)).strip()
            v = Verdict(study=sid, claim=all_studies()[sid].claim, status="error", summary=msg, preset=preset,
                        seeds=[seed], elapsed_s=round(time.monotonic() - s0, 2))
        verdicts.append(v)
        lab.log(len(verdicts), {"study": sid, "verdict": v.status, "elapsed_s": v.elapsed_s})
        if on_verdict:
            on_verdict(v)
    html_path, json_path = write_report(lab.dir, [v.model_dump(mode="json") for v in verdicts],
                                        meta={"preset": preset, "seed": seed, "lab_run": lab.id,
                                              "elapsed_s": round(time.monotonic() - t0, 1)})
    lab.finish({s: sum(v.status == s for v in verdicts) for s in ("holds", "fails", "inconclusive", "error")})
    return lab, verdicts, html_path, json_path
