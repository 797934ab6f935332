"""Write the reference sets of a multi-domain calibration for smollm2 (docs/detect.md, "Several domains"):
one JSONL file per domain, to give to ``neumo detect calibrate A B C --rule max``. Run from the repo root:

    PYTHONPATH=src .venv/bin/python scripts/multidomain_calibration_data.py OUT_DIR
    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python -m neumo.cli.main detect calibrate OUT_DIR/xsum.jsonl \
        OUT_DIR/writing.jsonl OUT_DIR/squad.jsonl --model smollm2 --detector specdetect --rule max \
        --max-tokens 128 --target-fpr 0.05 --precision fp32 --out src/neumo/detect/calibrations/smollm2-multidomain.json

For each shipped GPT-Neo-2.7B subset (xsum, writing, squad) it keeps the pairs that S-detect-real's quick
preset does not score (its seeds 0-2 take 3 x 16 eligible pairs of xsum and writing at 128 tokens; squad is
not in it), in file order, and writes ``OUT_DIR/{dataset}.jsonl``: the first N_HUMAN of them as whole human
texts (label 0) and the first N_MACHINE as whole machine texts (label 1). Whole texts, because `detect score`,
`explain` and `serve` score a text from its first token (as for the shipped smollm2.json). The max rule
(S-detect-transfer) takes the largest of the three files' own thresholds, so each domain's reference FPR is
at most the target; the pooled rule (``--rule pooled``) left squad at 11% in that study.
"""

import json
import sys
from pathlib import Path

from neumo.detect.lm import load_lm
from neumo.detect.pairs import encode_pairs, find_pair_file, load_pairs
from neumo.studies.detect_real import _block

DATASETS = ["xsum", "writing", "squad"]
IN_DETECT_REAL_QUICK = {"xsum", "writing"}  # S-detect-real's default datasets
N_HUMAN, N_MACHINE = 100, 40

if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "multidomain")
    out.mkdir(parents=True, exist_ok=True)
    lm = load_lm("smollm2")  # the tokenizer decides which pairs S-detect-real finds eligible
    for d in DATASETS:
        path = find_pair_file(None, d, "gpt-neo-2.7B")
        h, m = load_pairs(path)
        used: set[int] = set()
        if d in IN_DETECT_REAL_QUICK:
            enc = encode_pairs(lm, h, m)
            for seed in range(3):
                used |= set(_block(enc, 128, 16, seed, path.name)[0])
        free = [i for i in range(len(h)) if i not in used]
        rows = [{"text": h[i], "label": 0} for i in free[:N_HUMAN]] + [{"text": m[i], "label": 1} for i in free[:N_MACHINE]]
        (out / f"{d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        print(d, f"{len(used)} pairs used by S-detect-real quick; wrote pairs {free[:N_HUMAN][:3]}... "
              f"({min(N_HUMAN, len(free))} human, {min(N_MACHINE, len(free))} machine)")
