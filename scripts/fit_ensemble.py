"""Fit an ensemble calibration (neumo.detect.ensemble) on a labelled reference file (run from the repo root).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python scripts/fit_ensemble.py writing100.jsonl \
        --model smollm2 --model gemma3-270m --max-tokens 128 --target-fpr 0.05 \
        --name "fast-detect-gpt writing_gpt-neo-2.7B (first 100 pairs, 128 tokens, whole texts)" \
        --out src/neumo/detect/calibrations/ensemble-smollm2+gemma3-270m.json

Each model is z-scored with its calibration (``--calibration`` files, else its shipped one; each must hold
the human score statistics that ``neumo detect calibrate`` writes) and loaded at the precision the CLI uses
(``neumo.detect.lm.FACE_PRECISION``, or ``--precision``). The threshold on the mean z is fitted on the human
texts of the file at ``--target-fpr``, with the 95% bootstrap band of ``--band-boot`` resamples (as
``neumo detect calibrate``).
"""

import argparse
from pathlib import Path

from neumo.detect.ensemble import calibrate_ensemble, resolve_members, save_ensemble
from neumo.detect.evaluate import default_calibration, load_calibration
from neumo.detect.lm import face_precision, load_lm

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--model", action="append", required=True)
    ap.add_argument("--calibration", action="append", default=[], type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--name", default=None)
    ap.add_argument("--target-fpr", type=float, default=0.05)
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--band-boot", type=int, default=1000)
    ap.add_argument("--precision", default=None)
    a = ap.parse_args()
    cals = {c.model: c for c in map(load_calibration, a.calibration)}
    for m in a.model:
        if m not in cals and (shipped := default_calibration(m)) is not None:
            cals[m] = shipped
    members = resolve_members(a.model, cals, None)
    lms = [load_lm(m, precision=face_precision(m, a.precision)) for m in a.model]
    cal = calibrate_ensemble(a.data, lms, members, reference=a.name, target_fpr=a.target_fpr, limit=a.limit,
                             max_tokens=a.max_tokens, band_boot=a.band_boot)
    save_ensemble(cal, a.out)
    band = f"; undecided in [{cal.band[0]:.4f}, {cal.band[1]:.4f})" if cal.band else ""
    print(f"{cal.detector} >= {cal.threshold:.4f}{band} (reference {cal.reference}: {cal.n_human} human, "
          f"{cal.n_machine} machine, AUROC {cal.reference_auroc:.3f}); saved {a.out}")
