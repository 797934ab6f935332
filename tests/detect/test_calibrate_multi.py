"""`neumo detect calibrate` over several files: one threshold over their pooled human texts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neumo.detect.datasets import evaluate_file, pool_files
from neumo.detect.evaluate import fit_threshold
from neumo.detect.pairs import SHIPPED_DIR

FILES = [SHIPPED_DIR / f"{d}_gpt-neo-2.7B.raw_data.json.gz" for d in ("xsum", "squad")]


def test_pool_files_weights_the_human_reference_by_humans(ngram_lm):
    evals = [evaluate_file(ngram_lm, p, ["logrank"], limit=n, max_tokens=60, n_boot=0) for p, n in zip(FILES, (3, 6))]
    scores, labels, ref = pool_files(evals, "logrank")
    assert len(scores) == 18 and labels.tolist() == [0] * 3 + [1] * 3 + [0] * 6 + [1] * 6
    for k, v in ref.items():
        assert v == pytest.approx((3 * evals[0].human_reference[k] + 6 * evals[1].human_reference[k]) / 9)


def test_calibrate_several_files_fits_one_pooled_threshold(tmp_path, cli, ngram_lm):
    out = tmp_path / "cal.json"
    argv = ["detect", "calibrate", *map(str, FILES), "-m", "ngram", "-d", "logrank", "--limit", "5",
            "--max-tokens", "60", "--band-boot", "0", "--target-fpr", "0.2", "--out", str(out), "--json"]
    code, stdout, err = cli(argv)
    assert code == 0, err
    cal = json.loads(out.read_text())
    human = np.concatenate([evaluate_file(ngram_lm, p, ["logrank"], limit=5, max_tokens=60, n_boot=0)
                            .scores["logrank"][:5] for p in FILES])
    assert cal["threshold"] == fit_threshold(human, 0.2) and cal["n_human"] == 10 and cal["n_machine"] == 10
    assert cal["reference"] == " + ".join(p.name for p in FILES) and json.loads(stdout)["threshold"] == cal["threshold"]
    code, _, err = cli(argv[:2] + [str(FILES[0]), str(tmp_path / "nope.json")] + argv[4:])
    assert code == 2 and "does not exist" in err
