"""S-detect-transfer: the vectorised threshold refit against fit_threshold, the transfer cells by hand, the
study on stubbed scores (a planted domain shift holds, no shift fails, nulls never hold), on the n-gram model
(fast: its gate fails) and on SmolLM2 (slow: quick verdict pinned, full agrees)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neumo.detect.evaluate import fit_threshold
from neumo.detect.lm import face_precision
from neumo.detect.transfer import allowed_count, rate_at, resample, thresholds
from neumo.errors import NeumoError
from neumo.studies import detect_transfer as dt
from neumo.studies.detect_transfer_stats import shuffle_domains, split_halves, transfer
from neumo.studies.judge import judge_units
from neumo.studies.runner import load_units, resolve_config, run_study

# ---- thresholds refitted in bulk equal neumo detect calibrate's ----------------------------------------------


@pytest.mark.parametrize("target", [0.01, 0.05, 0.1, 0.25, 0.5, 0.99])
def test_bulk_thresholds_equal_fit_threshold_with_ties(target):
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 20, 101):
        rows = rng.integers(0, 6, size=(40, n)).astype(float)  # many ties, as a bootstrap resample has
        got = thresholds(rows, target)
        want = [fit_threshold(r, target) for r in rows]
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(rate_at(got, rows), [np.mean(r >= t) for r, t in zip(rows, want)])


def test_allowed_count_is_the_largest_share_within_target():
    assert allowed_count(100, 0.05) == 5 and allowed_count(99, 0.05) == 4 and allowed_count(19, 0.05) == 0
    assert allowed_count(20, 0.05) == 1 and allowed_count(3, 0.34) == 1


def test_resample_keeps_the_data_in_row_zero():
    v = np.arange(5.0)
    r = resample(v, 50, np.random.default_rng(0))
    assert r.shape == (50, 5) and r[0].tolist() == v.tolist() and set(np.unique(r)) <= set(v)


# ---- cells by hand -----------------------------------------------------------------------------------------


def test_transfer_cells_by_hand():
    """Two domains, 4 humans each (cal = first two, test = last two), target 0.5: the threshold is the larger
    calibration score."""
    human = {"a_g": np.array([1.0, 2.0, 1.5, 2.5]), "b_g": np.array([5.0, 6.0, 5.5, 7.0])}
    machine = {"a_g": np.array([3.0, 0.0]), "b_g": np.array([8.0, 6.5])}
    halves = {k: (np.array([0, 1]), np.array([2, 3])) for k in human}
    r = transfer(human, machine, halves, ["a_g", "b_g"], 0.5, 100, np.random.default_rng(0))
    assert r["thr|a_g"][0] == 2.0 and r["thr|b_g"][0] == 6.0
    assert r["fpr|a_g|a_g"][0] == 0.5 and r["fpr|a_g|b_g"][0] == 1.0  # a's threshold flags every b human
    assert r["fpr|b_g|a_g"][0] == 0.0 and r["fpr|b_g|b_g"][0] == 0.5
    assert r["tpr|a_g|a_g"][0] == 0.5 and r["tpr|b_g|b_g"][0] == 1.0
    assert r["off_domain_fpr_mean"][0] == 0.5 and r["offdomain_fpr_worst"][0] == 1.0
    assert r["in_domain_fpr_mean"][0] == 0.5
    # max rule: max(2, 6) = 6; a's test humans {1.5, 2.5} 0/2, b's {5.5, 7} 1/2; machines {3, 0, 8, 6.5} 2/4
    assert r["thr|multi"][0] == 6.0 and r["fpr_dom|multi|a"][0] == 0.0 and r["fpr_dom|multi|b"][0] == 0.5
    assert r["multidomain_worst_fpr"][0] == 0.5 and r["multidomain_tpr_mean"][0] == pytest.approx((0 + 1) / 2)
    # pooled calibration {1, 2, 5, 6} at 0.5: threshold 5; a's test humans 0/2, b's 2/2
    assert r["thr|pooled"][0] == 5.0 and r["fpr_dom|pooled|a"][0] == 0.0 and r["fpr_dom|pooled|b"][0] == 1.0
    assert r["pooled_worst_fpr"][0] == 1.0
    # per replicate the max rule is the larger of the two refitted thresholds
    np.testing.assert_array_equal(r["thr|multi"], np.maximum(r["thr|a_g"], r["thr|b_g"]))
    assert r["single_worst_fpr"][0] == pytest.approx((1.0 + 0.5) / 2)
    assert all(v.shape == (100,) for v in r.values())


def test_splits_and_shuffle_are_seeded_and_disjoint():
    a, b = split_halves(0, ["x"], {"x": 11}), split_halves(1, ["x"], {"x": 11})
    cal, test = a["x"]
    assert len(cal) == 5 and len(test) == 6 and not set(cal) & set(test) and set(cal) | set(test) == set(range(11))
    assert split_halves(0, ["x"], {"x": 11})["x"][0].tolist() == cal.tolist() and b["x"][0].tolist() != cal.tolist()
    h = {"x": np.arange(5.0), "y": np.arange(5.0, 12.0)}
    s = shuffle_domains(0, h)
    assert [len(v) for v in s.values()] == [5, 7] and sorted(np.r_[s["x"], s["y"]]) == list(np.arange(12.0))


# ---- the study on stubbed scores ---------------------------------------------------------------------------

STUB = ["model=ngram", "generators=[gen]", "multi_generators=[gen]", "n_boot=100", "report_detectors=[logrank]"]


def _stub(monkeypatch, shifts: dict[str, float], n_humans: int = 600, n_machines: int = 200):
    """Scores of file f (``{domain}_{generator}``): humans N(shift_f, 1), machines N(4, 1), the same for every
    detector (no model is run); ``shifts`` is keyed by domain, or by file to shift one generator's file."""

    def files(cfg):
        keys = [f"{d}_{g}" for g in cfg.generators for d in cfg.datasets]
        return {k: Path(f"{k}.raw_data.json") for k in keys}, ["skipped_gen"]

    def scores(cfg, lm, path, cache):
        k = path.name.split(".raw_data")[0]
        d = k.split("_")[0]
        rng = np.random.default_rng([ord(c) for c in k])
        h, m = rng.normal(shifts.get(k, shifts.get(d)), 1.0, n_humans), rng.normal(4.0, 1.0, n_machines)
        dets = {cfg.detector, *cfg.report_detectors}
        return {"human": {x: h.tolist() for x in dets}, "machine": {x: m.tolist() for x in dets},
                "eligible": n_humans, "prompt_mean": 30.0, "scored_min": 64}

    monkeypatch.setattr(dt, "_files", files)
    monkeypatch.setattr(dt, "_file_scores", scores)


def test_planted_shift_holds_and_its_nulls_do_not(monkeypatch, tmp_path):
    """Three domains alike and one far more 'human': single-domain thresholds transfer badly, the max rule
    holds every domain at or under target (the alike domains bind it: about the in-domain 1.0x)."""
    shifts = {"a": 0.0, "b": 0.0, "c": 0.0, "d": -3.0}
    _stub(monkeypatch, shifts, n_humans=2000)
    over = [*STUB, "datasets=[a,b,c,d]"]
    v = run_study("S-detect-transfer", preset="quick", overrides=over, root=tmp_path)
    assert v.status == "holds", v.reason
    assert all(g.passed for g in v.preconditions)
    m = v.measured
    assert m["offdomain_fpr_ratio"] > 4 and m["multidomain_worst_fpr_ratio"] < 1.5 and m["files_skipped"] == 1
    assert 0.8 < m["in_domain_fpr_ratio"] < 1.3 and m["multidomain_fpr_d"] < 0.01
    assert m["multidomain_tpr_mean"] < m["in_domain_tpr_mean"]  # the max rule pays in TPR on domain d
    for c in v.checks:
        assert c.controls and all(r.passed is False for r in c.controls)   # every control lies on the wrong side
    units, seeds = load_units(v.run_dir)
    cfg = resolve_config(dt.DetectTransfer, "quick", over)
    for null in dt.NULLS:
        assert judge_units(dt.DetectTransfer(), cfg, units, seeds, treatment=null).status != "holds"
    cells = [r for r in v.tables["cells"] if r["seed"] == 0]
    kinds = {"in_domain", "off_domain", "multi_domain", "pooled"}
    assert len(cells) == 4 * 4 + 2 * 4 and {r["kind"] for r in cells} == kinds
    assert all(r["fpr_lo"] <= r["fpr"] <= r["fpr_hi"] and r["tpr_lo"] <= r["tpr"] <= r["tpr_hi"] for r in cells)


def test_no_shift_fails_the_transfer_check(monkeypatch, tmp_path):
    _stub(monkeypatch, {"a": 0.0, "b": 0.0, "c": 0.0})
    v = run_study("S-detect-transfer", preset="quick", overrides=[*STUB, "datasets=[a,b,c]"], root=tmp_path)
    assert v.status == "fails", v.reason
    key = {c.name: c for c in v.checks}
    assert key["offdomain_fpr_ratio"].passed is False and key["multidomain_worst_fpr_ratio"].passed is True


def test_max_rule_bounds_the_shift_a_pooled_threshold_does_not(monkeypatch, tmp_path):
    """One domain far more 'machine-like': the pooled threshold (reported) sits in its tail and it gets ~3x
    target; the max rule is c's own threshold, so c stays near target and a, b fall far under it."""
    _stub(monkeypatch, {"a": 0.0, "b": 0.0, "c": 3.0}, n_humans=4000)
    v = run_study("S-detect-transfer", preset="quick", overrides=[*STUB, "datasets=[a,b,c]"], root=tmp_path)
    m = v.measured
    assert {c.name: c.passed for c in v.checks}["multidomain_worst_fpr_ratio"] is True, v.reason
    assert m["multidomain_worst_fpr_ratio"] < 1.3 and m["pooled_worst_fpr_ratio"] > 2.5
    assert 0.03 < m["multidomain_fpr_c"] < 0.07 and m["multidomain_fpr_a"] < 0.001 and m["pooled_fpr_c"] > 0.12


def test_max_rule_fails_on_a_domain_its_calibration_files_do_not_represent(monkeypatch, tmp_path):
    """Domain c's file of a second generator has far more 'machine-like' humans than the file the max rule
    is fitted on (multi_generators = g1): c's FPR over both files is about (5% + 93%) / 2, far above 2x."""
    _stub(monkeypatch, {"a": 0.0, "b": 0.0, "c": 0.0, "c_g2": 3.0})
    over = [*STUB, "datasets=[a,b,c]", "generators=[g1,g2]", "multi_generators=[g1]"]
    v = run_study("S-detect-transfer", preset="quick", overrides=over, root=tmp_path)
    assert v.status == "fails", v.reason
    assert {c.name: c.passed for c in v.checks}["multidomain_worst_fpr_ratio"] is False
    assert v.measured["multidomain_fpr_c"] > 0.4 and v.measured["multidomain_fpr_a"] < 0.1


def test_null_near_target_is_a_gate(monkeypatch, tmp_path):
    _stub(monkeypatch, {"a": 0.0, "b": 1.0, "c": 0.0})
    over = [*STUB, "datasets=[a,b,c]", "thresholds.in_domain_ratio_min=1.5"]
    v = run_study("S-detect-transfer", preset="quick", seeds=2, overrides=over, root=tmp_path)
    assert v.status == "inconclusive" and "in_domain_fpr_min" in v.reason


# ---- data and config ---------------------------------------------------------------------------------------


def test_files_not_shipped_are_skipped_and_a_data_dir_must_hold_them(tmp_path):
    cfg = resolve_config(dt.DetectTransfer, "full", [])
    files, skipped = dt._files(cfg)
    assert sorted(files) == ["squad_gpt-neo-2.7B", "writing_gpt-neo-2.7B", "xsum_gpt-neo-2.7B"] and len(skipped) == 12
    with pytest.raises(NeumoError, match="no pair file"):
        dt._files(resolve_config(dt.DetectTransfer, "full", [f"data_dir={tmp_path}"]))
    with pytest.raises(NeumoError, match="multi_generators"):
        dt._files(resolve_config(dt.DetectTransfer, "full", ["multi_generators=[gpt2-xl]"]))


@pytest.mark.parametrize("bad", ["detector=nope", "datasets=[xsum]", "multi_generators=[gpt9]", "target_fpr=1",
                                 "report_fprs=[0]", "n_boot=10", "typo=1"])
def test_bad_configs_are_refused(bad):
    with pytest.raises(NeumoError):
        resolve_config(dt.DetectTransfer, "quick", [bad])


# ---- the n-gram model (fast tier): real scoring, cached once per run ------------------------------------------


def test_ngram_quick_scores_once_and_fails_its_gate(tmp_path, monkeypatch):
    import neumo.detect.score as score

    calls = []
    real = score.score_ids
    monkeypatch.setattr(score, "score_ids", lambda *a, **k: calls.append(1) or real(*a, **k))
    over = ["model=ngram", "n_tokens=200", "n_humans=60", "n_machines=20", "n_boot=100"]
    v = run_study("S-detect-transfer", preset="quick", overrides=over, root=tmp_path)
    assert len(calls) == 3                                    # one pass per file, seeds 1-2 read the cache
    assert sorted(p.name for p in (Path(v.run_dir) / "scores").iterdir()) == [
        "squad_gpt-neo-2.7B.json", "writing_gpt-neo-2.7B.json", "xsum_gpt-neo-2.7B.json"]
    assert v.status == "inconclusive" and "auroc_mean" in v.reason   # a character 5-gram is near chance here
    assert v.measured["scored_tokens_min"] == 200 and v.measured["cal_humans_min"] == 30
    per = {c.name: c.per_seed for c in v.checks}
    assert len(set(per["offdomain_fpr_ratio"])) > 1           # seeds re-split: replications differ


# ---- SmolLM2 (slow tier) -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2_quick(tmp_path_factory):
    return run_study("S-detect-transfer", preset="quick", root=tmp_path_factory.mktemp("runs"))


@pytest.mark.slow
def test_smollm2_quick_verdict(smollm2_quick):
    v = smollm2_quick
    assert v.status == QUICK_STATUS, v.reason
    prec = face_precision("smollm2")
    for k, want in QUICK_PINNED[prec].items():
        assert v.measured[k] == pytest.approx(want, abs=RATIO_ABS if k in FPR_RATIOS else 0.02), (prec, k)


@pytest.mark.slow
def test_smollm2_full_agrees_with_quick(smollm2_quick, shared_data, tmp_path):
    # pinned at fp32 (measured on a CPU without native bf16), so it is run at fp32 on every CPU
    over = [f"data_dir={shared_data}", "precision=fp32"]
    v = run_study("S-detect-transfer", preset="full", overrides=over, root=tmp_path)
    assert v.measured["files"] == 15 and v.status == FULL_STATUS, v.reason
    for k, want in FULL_PINNED.items():
        assert v.measured[k] == pytest.approx(want, abs=0.02), k  # 300 test humans per file: finer steps


# measured (docs/studies/S-detect-transfer.md): specdetect judged, max rule, quick preset, 2026-12-04 on an
# AVX-512 + AMX CPU, at the precision the study uses there (face_precision: bf16 where native, else fp32).
# The FPR ratios count humans over a threshold (60 test humans per file at a 5% target, 3 seeds: one
# decision moves the off-domain ratio by 0.019, the in-domain one by 0.037 and a worst-domain ratio by up to
# 0.11), so kernels that round differently move them by a few humans: bf16 emulated on an AVX2 CPU gave
# 1.093 / 0.889 where native bf16 gives 1.167 / 1.000 and fp32 1.148 / 0.963 (the worst-domain ratios agreed
# to 0.001 in all three). The fp32 pins are this AVX-512 CPU's; an AVX2 CPU's fp32 is not measured.
QUICK_STATUS = "inconclusive"
FPR_RATIOS = {"offdomain_fpr_ratio", "multidomain_worst_fpr_ratio", "in_domain_fpr_ratio", "pooled_worst_fpr_ratio",
              "offdomain_fpr_ratio_logrank"}
RATIO_ABS = 0.12  # about 6 off-domain, 3 in-domain or 1 worst-domain human decision
QUICK_PINNED = {
    "bf16": {"offdomain_fpr_ratio": 1.167, "multidomain_worst_fpr_ratio": 0.778, "auroc_mean": 0.897,
             "in_domain_fpr_ratio": 1.000, "offdomain_fpr_worst": 0.156, "pooled_worst_fpr_ratio": 1.333,
             "multidomain_tpr_mean": 0.347, "in_domain_tpr_mean": 0.528, "offdomain_fpr_ratio_logrank": 1.426},
    "fp32": {"offdomain_fpr_ratio": 1.148, "multidomain_worst_fpr_ratio": 0.778, "auroc_mean": 0.897,
             "in_domain_fpr_ratio": 0.963, "offdomain_fpr_worst": 0.150, "pooled_worst_fpr_ratio": 1.333,
             "multidomain_tpr_mean": 0.339, "in_domain_tpr_mean": 0.528, "offdomain_fpr_ratio_logrank": 1.426},
}
# measured 2026-12-03, full preset, 15 files, at fp32 (a CPU without native bf16; see docs/detect.md, Precision)
FULL_STATUS = "fails"  # off-domain 1.35x [0.93, 1.71], wholly under 2x
FULL_PINNED = {"offdomain_fpr_ratio": 1.353, "multidomain_worst_fpr_ratio": 0.900, "auroc_mean": 0.862,
               "in_domain_fpr_ratio": 1.010, "offdomain_fpr_worst": 0.3225, "pooled_worst_fpr_ratio": 1.460,
               "multidomain_tpr_mean": 0.282, "in_domain_tpr_mean": 0.416, "offdomain_fpr_ratio_logrank": 1.964}
