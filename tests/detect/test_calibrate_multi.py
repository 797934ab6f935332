"""`neumo detect calibrate` over several files: the max rule (the largest of the files' own thresholds) and
the pooled rule (one threshold over their pooled human texts), by hand and through the CLI; shipped
calibrations by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neumo.detect.datasets import evaluate_file, pool_files
from neumo.detect.evaluate import (default_calibration, SHIPPED_CALIBRATIONS, calibration_path, fit_calibration, fit_threshold,
                                   load_calibration, max_threshold, max_threshold_band, threshold_band)
from neumo.detect.pairs import SHIPPED_DIR
from neumo.errors import NeumoError
from neumo.seeding import numpy_rng

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
            "--max-tokens", "60", "--band-boot", "0", "--target-fpr", "0.2", "--out", str(out), "--json",
            "--rule", "pooled"]
    code, stdout, err = cli(argv)
    assert code == 0, err
    cal = json.loads(out.read_text())
    human = np.concatenate([evaluate_file(ngram_lm, p, ["logrank"], limit=5, max_tokens=60, n_boot=0)
                            .scores["logrank"][:5] for p in FILES])
    assert cal["threshold"] == fit_threshold(human, 0.2) and cal["n_human"] == 10 and cal["n_machine"] == 10
    assert cal["reference"] == " + ".join(p.name for p in FILES) and json.loads(stdout)["threshold"] == cal["threshold"]
    code, _, err = cli(argv[:2] + [str(FILES[0]), str(tmp_path / "nope.json")] + argv[4:])
    assert code == 2 and "does not exist" in err


# ---- the max rule by hand ------------------------------------------------------------------------------------

A = [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]   # 20% of 10: 2 humans may be at or above -> threshold 9
B = [0.5, 1.0, 1.5, 2.0, 2.5]           # 20% of 5: 1 -> threshold 2.5


def _two_sets(rule, band_boot=0):
    scores = A + [11.0, 12.0] + B + [3.0]
    labels = [0] * 10 + [1, 1] + [0] * 5 + [1]
    domains = ["a"] * 12 + ["b"] * 6
    return fit_calibration(scores, labels, detector="logrank", model="ngram", reference="a + b", target_fpr=0.2,
                           domains=domains, rule=rule, band_boot=band_boot)


def test_max_rule_takes_the_largest_own_threshold_and_bounds_every_set():
    assert fit_threshold(A, 0.2) == 9.0 and fit_threshold(B, 0.2) == 2.5 and max_threshold([A, B], 0.2) == 9.0
    cal = _two_sets("max")
    assert cal.threshold == 9.0 and cal.rule == "max" and cal.n_human == 15 and cal.n_machine == 3
    got = [(d.reference, d.threshold, d.n_human, d.n_machine, d.fpr) for d in cal.domains]
    assert got == [("a", 9.0, 10, 2, 0.2), ("b", 2.5, 5, 1, 0.0)]     # a: {9, 10} of 10; b: none of 5
    # pooled: 20% of the 15 humans = 3 at or above -> 8 (8, 9, 10), which flags 30% of a's humans
    pooled = _two_sets("pooled")
    assert pooled.threshold == 8.0 and pooled.rule == "pooled"
    assert [(d.threshold, d.fpr) for d in pooled.domains] == [(9.0, 0.3), (2.5, 0.0)]
    assert cal.reference_auroc == pooled.reference_auroc and cal.human_score_mean == pooled.human_score_mean


def test_max_band_is_the_interval_of_the_per_replicate_max():
    lo, hi = max_threshold_band([A, B], 0.2, n_boot=300, seed=3)
    g = numpy_rng(3, "threshold-band", "max")   # the same stream, thresholds refitted one by one
    ia, ib = g.integers(0, 10, size=(300, 10)), g.integers(0, 5, size=(300, 5))
    ia[0], ib[0] = np.arange(10), np.arange(5)  # replicate 0 is the data itself
    a, b = np.asarray(A), np.asarray(B)
    vals = [max(fit_threshold(a[i], 0.2), fit_threshold(b[j], 0.2)) for i, j in zip(ia, ib)]
    assert (lo, hi) == (min(9.0, np.quantile(vals, 0.025)), max(9.0, np.quantile(vals, 0.975)))
    assert lo <= 9.0 <= hi and lo < hi
    cal = _two_sets("max", band_boot=300)
    assert cal.band == max_threshold_band([A, B], 0.2, n_boot=300, seed=0) and "max over the 2" in cal.band_method
    with pytest.raises(NeumoError, match="'n_boot' parameter"):
        max_threshold_band([A, B], 0.2, n_boot=0)


def test_one_set_both_rules_coincide_and_bad_rules_are_refused():
    scores, labels = A + [11.0, 12.0], [0] * 10 + [1, 1]
    kw = dict(detector="logrank", model="ngram", reference="a", target_fpr=0.2, band_boot=200)
    one = [fit_calibration(scores, labels, domains=["a"] * 12, rule=r, **kw) for r in ("max", "pooled")]
    plain = fit_calibration(scores, labels, **kw)
    for c in one:
        assert (c.threshold, c.band, c.rule, c.domains) == (plain.threshold, plain.band, None, [])
    assert plain.band == threshold_band(A, 0.2, 200)
    with pytest.raises(NeumoError, match="rule must be one of max, pooled"):
        fit_calibration(scores, labels, rule="mean", **kw)
    with pytest.raises(NeumoError, match="no human texts"):
        fit_calibration(scores, labels, domains=["a"] * 10 + ["b"] * 2, rule="max", **kw)


def test_calibrate_cli_max_rule_records_each_file(tmp_path, cli, ngram_lm):
    out = tmp_path / "cal.json"
    argv = ["detect", "calibrate", *map(str, FILES), "-m", "ngram", "-d", "logrank", "--limit", "5",
            "--max-tokens", "60", "--band-boot", "50", "--target-fpr", "0.2", "--out", str(out)]
    code, stdout, err = cli(argv)                 # the default rule for several files is max
    assert code == 0, err
    cal = json.loads(out.read_text())
    own = [fit_threshold(evaluate_file(ngram_lm, p, ["logrank"], limit=5, max_tokens=60, n_boot=0)
                         .scores["logrank"][:5], 0.2) for p in FILES]
    assert cal["rule"] == "max" and cal["threshold"] == max(own)
    assert [(d["reference"], d["threshold"], d["n_human"]) for d in cal["domains"]] == \
        [(p.name, t, 5) for p, t in zip(FILES, own)]
    assert all(d["fpr"] <= 0.2 for d in cal["domains"]) and "rule max" in stdout
    assert cal["band"][0] <= cal["threshold"] <= cal["band"][1]
    assert load_calibration(out).domains[0].reference == FILES[0].name        # it loads back


@pytest.mark.parametrize("bad, msg", [(["--rule", "mean"], "--rule must be max or pooled; got 'mean'"),
                                      (["--rule", ""], "--rule must be max or pooled")])
def test_calibrate_refuses_a_bad_rule_before_loading(tmp_path, cli, monkeypatch, bad, msg):
    import neumo.cli.detect as d

    monkeypatch.setattr(d, "_load", lambda *a: pytest.fail("loaded a model"))
    code, _, err = cli(["detect", "calibrate", *map(str, FILES), "-o", str(tmp_path / "c.json"), *bad])
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1


def test_same_file_twice_is_refused(tmp_path, cli):
    code, _, err = cli(["detect", "calibrate", str(FILES[0]), str(FILES[0]), "-o", str(tmp_path / "c.json")])
    assert code == 2 and "given twice" in err


# ---- shipped calibrations by name ---------------------------------------------------------------------------


def test_shipped_calibrations_load_by_name(tmp_path):
    assert calibration_path("smollm2") == SHIPPED_CALIBRATIONS / "smollm2.json"
    assert calibration_path("smollm2.json") == SHIPPED_CALIBRATIONS / "smollm2.json"
    cal = load_calibration("gemma3-270m")
    assert cal.source == "gemma3-270m.json (shipped)" and cal.model == "gemma3-270m"
    mine = tmp_path / "smollm2"                      # a file of that name wins over the shipped one
    mine.write_text(SHIPPED_CALIBRATIONS.joinpath("gemma3-270m.json").read_text())
    assert calibration_path(mine) == mine and load_calibration(mine).model == "gemma3-270m"
    with pytest.raises(NeumoError, match="neither a file nor a shipped calibration .*gemma3-270m, smollm2"):
        calibration_path("smollm3")
    with pytest.raises(NeumoError, match="does not exist"):
        calibration_path(tmp_path / "smollm2.json")   # a path to a missing file is not a name


def test_score_cli_takes_a_shipped_calibration_name(cli, tmp_path):
    txt = tmp_path / "t.txt"
    txt.write_text("The fire crews worked through the night.")
    code, _, err = cli(["detect", "score", str(txt), "-m", "ngram", "--calibration", "no-such-cal"])
    assert code == 2 and "gemma3-270m, smollm2" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(["detect", "score", str(txt), "-m", "ngram", "--calibration", "gemma3-270m"])
    assert code == 2 and "gemma3-270m" in err and "does not exist" not in err  # found by name, other model


def test_the_shipped_multidomain_calibration_is_the_max_of_its_domains_thresholds():
    """smollm2-multidomain.json (docs/detect.md, "Several domains"): specdetect, max rule over the shipped
    xsum / writing / squad reference sets; its threshold is the largest domain's own, so each domain's
    in-sample FPR is at most the target; smollm2's default stays smollm2.json."""
    cal = load_calibration("smollm2-multidomain")
    assert cal.model == "smollm2" and cal.detector == "specdetect" and cal.rule == "max"
    assert [d.reference for d in cal.domains] == ["xsum.jsonl", "writing.jsonl", "squad.jsonl"]
    assert cal.threshold == max(d.threshold for d in cal.domains)
    assert all(d.fpr <= cal.target_fpr and d.n_human == 100 and d.n_machine == 40 for d in cal.domains)
    assert cal.n_human == 300 and cal.n_machine == 120 and cal.band[0] <= cal.threshold < cal.band[1]
    assert default_calibration("smollm2").source == "smollm2.json (shipped)"
