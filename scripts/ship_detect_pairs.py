"""Draw the Fast-DetectGPT subset shipped in src/neumo/detect/data/fast-detect-gpt (run from the repo root).

    .venv/bin/python scripts/ship_detect_pairs.py ../shared/data/detect/fast-detect-gpt

Source: github.com/baoguangsheng/fast-detect-gpt at commit 971b052 (MIT licence), the GPT-Neo-2.7B files
of xsum, writing and squad; 200 pairs per file drawn uniformly without replacement (seed 0, see
neumo.detect.pairs.draw_subset), written as gzip-compressed JSON with each pair's index in the source file.
"""

import shutil
import sys
from pathlib import Path

from neumo.detect.pairs import SHIPPED_DIR, draw_subset

DATASETS = ["xsum", "writing", "squad"]
GENERATOR = "gpt-neo-2.7B"
N_PAIRS = 200
SEED = 0

if __name__ == "__main__":
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/detect/fast-detect-gpt")
    for row in draw_subset(src, SHIPPED_DIR, DATASETS, GENERATOR, N_PAIRS, SEED):
        print(row)
    shutil.copyfile(src / "LICENSE", SHIPPED_DIR / "LICENSE")
