"""AUROC of an ensemble across tokenizers (neumo.detect.ensemble) and of each of its members, on labelled
files (run from the repo root).

    D=src/neumo/detect/data/fast-detect-gpt
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python scripts/eval_ensemble.py $D/*.json.gz \
        --model smollm2 --model gemma3-270m --limit 100 --max-tokens 128 --n-boot 1000 [--json]

Members and their z-scoring come from the ensemble calibration (``--calibration ENS.json``, else the shipped
one of those models) or from one calibration per model (``--calibration``, else each model's shipped one),
as ``neumo detect score`` takes them. Pair files score the continuation only (as ``neumo detect eval``). Each
row: AUROC with its stratified bootstrap 95% interval, TPR at 1% and 5% FPR, for every member's calibrated
detector and for the ensemble's mean z; ``tpr_at_cal`` / ``fpr_at_cal``: the share of machine / human texts
that the threshold of the ensemble calibration (ensemble row) or of the model's shipped calibration (member
rows: the given one, else its shipped one) flags, when there is one (score >= threshold; the band is not applied). ``--all-detectors`` adds, from
the same scoring passes, every one-pass detector of every member (the rows of ``neumo detect eval``, with
``by_length``, under ``member_rows`` in ``--json``).
"""

import argparse
import json
from pathlib import Path

import numpy as np

from neumo.detect.ensemble import is_ensemble_file, mean_z, member_file_evals, plan_members
from neumo.detect.evaluate import default_calibration, load_calibration, summarize
from neumo.detect.lm import face_precision, load_lm

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("data", nargs="+", type=Path)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--calibration", action="append", default=[], type=Path)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default=None)
    ap.add_argument("--all-detectors", action="store_true")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    members, ensemble = plan_members(a.model, a.calibration)
    given = {c.model: c for c in (load_calibration(p) for p in a.calibration if not is_ensemble_file(p))}
    lms = [load_lm(m, precision=face_precision(m, a.precision)) for m in a.model]
    rows, member_rows = [], []
    for path in a.data:
        evals, y = member_file_evals(path, lms, members, None if a.all_detectors else [], limit=a.limit,
                                     max_tokens=a.max_tokens, n_boot=a.n_boot if a.all_detectors else 0, seed=a.seed)
        scores = {m.model: fe.scores[m.detector] for m, fe in zip(members, evals)}
        if a.all_detectors:
            for lm, fe in zip(lms, evals):
                member_rows += [{"model": lm.name, **r} for r in fe.rows]
                if not a.json:
                    for r in fe.rows:
                        print(f"{path.name:40s} {lm.name + ':' + r['detector']:32s} AUROC {r['auroc']:.3f} "
                              f"[{r['auroc_lo']:.3f}, {r['auroc_hi']:.3f}]  TPR@1%FPR {r['tpr_at_1fpr']:.3f}", flush=True)
        named = {f"{m.model}:{m.detector}": scores[m.model] for m in members}
        named["ensemble mean z"] = np.asarray(mean_z(scores, members))
        thresholds = {f"{m.model}:{m.detector}": given.get(m.model) or default_calibration(m.model) for m in members}
        thresholds["ensemble mean z"] = ensemble
        for what, s in named.items():
            row = {"file": path.name, "scores": what, **summarize(s, y, n_boot=a.n_boot, seed=a.seed)}
            cal = thresholds[what]
            if cal is not None and (what == "ensemble mean z" or cal.detector == what.split(":", 1)[1]):
                flagged = s >= cal.threshold
                row["tpr_at_cal"], row["fpr_at_cal"] = float(flagged[y == 1].mean()), float(flagged[y == 0].mean())
            rows.append(row)
            if not a.json:
                print(f"{path.name:40s} {what:32s} AUROC {row['auroc']:.3f} [{row['auroc_lo']:.3f}, "
                      f"{row['auroc_hi']:.3f}]  TPR@1%FPR {row['tpr_at_1fpr']:.3f}  TPR@5%FPR {row['tpr_at_5fpr']:.3f}  "
                      f"n {row['n_human']}+{row['n_machine']}"
                      + (f"  at the calibrated threshold: TPR {row['tpr_at_cal']:.2f} FPR {row['fpr_at_cal']:.2f}"
                         if "fpr_at_cal" in row else ""), flush=True)
    cal = ensemble.source if ensemble is not None else "none"
    if a.json:
        print(json.dumps({"members": [m.model_dump() for m in members], "ensemble_calibration": cal, "rows": rows,
                          "member_rows": member_rows}, indent=2))
    else:
        print(f"members: {', '.join(f'{m.model}:{m.detector} z against {m.calibration}' for m in members)}; "
              f"ensemble calibration: {cal}")
