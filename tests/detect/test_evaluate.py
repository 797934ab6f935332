import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from neumo.detect.evaluate import auroc, bootstrap_ci, fit_threshold, load_labelled, summarize, tpr_at_fpr
from neumo.errors import NeumoError


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_and_tpr_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 200)
    s = rng.normal(size=200) + y * 0.8
    s[:20] = np.round(s[:20])                             # ties
    assert auroc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, s)
    for a in (0.01, 0.05, 0.2):
        assert tpr_at_fpr(s, y, a) == pytest.approx(tpr[fpr <= a].max())


def test_bootstrap_ci_contains_point_and_is_seeded():
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(50), np.ones(50)]
    s = rng.normal(size=100) + y
    lo, hi = bootstrap_ci(s, y, n_boot=200, seed=5)
    assert lo < auroc(s, y) < hi
    assert (lo, hi) == bootstrap_ci(s, y, n_boot=200, seed=5)
    row = summarize(s, y, n_boot=50)
    assert row["n_human"] == 50 and row["auroc_lo"] <= row["auroc"] <= row["auroc_hi"]


def test_fit_threshold_controls_reference_fpr():
    h = np.arange(100, dtype=float)
    t = fit_threshold(h, 0.05)
    assert np.mean(h >= t) <= 0.05 and np.mean(h >= t - 1) > 0.05
    assert fit_threshold([1.0, 1.0], 0.01) > 1.0


def test_readers(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"original": ["h1", "h2", "h3"], "sampled": ["m1", "m2", "m3"]}))
    texts, labels = load_labelled(tmp_path / "p.json", limit=2)
    assert texts == ["h1", "h2", "m1", "m2"] and labels == [0, 0, 1, 1]
    (tmp_path / "d.jsonl").write_text('{"text": "a", "label": "human"}\n{"text": "b", "label": 1}\n')
    assert load_labelled(tmp_path / "d.jsonl") == (["a", "b"], [0, 1])
    (tmp_path / "d.csv").write_text("text,label\nhello,machine\nbye,0\n")
    assert load_labelled(tmp_path / "d.csv") == (["hello", "bye"], [1, 0])
    (tmp_path / "bad.csv").write_text("text,label\nhello,maybe\n")
    with pytest.raises(NeumoError, match="label"):
        load_labelled(tmp_path / "bad.csv")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(NeumoError, match="UTF-8"):
        load_labelled(tmp_path / "bin.json")
    with pytest.raises(NeumoError, match="does not exist"):
        load_labelled(tmp_path / "none.json")
    with pytest.raises(NeumoError, match="both human"):
        auroc([1, 2], [1, 1])


def test_shared_fast_detectgpt_file(shared_data):
    texts, labels = load_labelled(shared_data / "detect/fast-detect-gpt/xsum_gpt-neo-2.7B.raw_data.json", limit=5)
    assert len(texts) == 10 and sum(labels) == 5


def test_shipped_calibration_has_its_provenance():
    from neumo.detect.evaluate import load_calibration, shipped_calibration

    assert shipped_calibration("ngram") is None
    path = shipped_calibration("smollm2")
    assert path is not None, "neumo ships a calibration for its default scoring model"
    cal = load_calibration(path)
    assert cal.detector in __import__("neumo.detect.registry", fromlist=["x"]).detector_names()
    assert "writing_gpt-neo-2.7B" in cal.reference and cal.n_human == cal.n_machine == 100
    assert cal.target_fpr == 0.05 and cal.max_tokens == 128 and cal.reference_auroc > 0.5


def test_tpr_at_1pct_fpr_by_hand_and_against_roc_curve():
    # 100 human scores 0..99, 5 machine scores. FPR <= 1% allows one human at or above the threshold:
    # threshold 99 flags human 99 (FPR 0.01) and machines 99.5, 100, 101, 200 -> TPR 4/5.
    h = np.arange(100, dtype=float)
    m = np.array([50.5, 99.5, 100.0, 101.0, 200.0])
    s, y = np.r_[h, m], np.r_[np.zeros(100), np.ones(5)]
    assert tpr_at_fpr(s, y, 0.01) == pytest.approx(0.8)
    fpr, tpr, _ = roc_curve(y, s)
    assert tpr_at_fpr(s, y, 0.01) == pytest.approx(tpr[fpr <= 0.01].max())
    # a tie between the top human and a machine: the tied machine needs the human flagged too
    s2 = np.r_[h, [99.0, 150.0]]
    y2 = np.r_[np.zeros(100), np.ones(2)]
    assert tpr_at_fpr(s2, y2, 0.01) == 1.0 and tpr_at_fpr(s2, y2, 0.0) == 0.5
    row = summarize(s, y, n_boot=0)
    assert row["tpr_at_1fpr"] == pytest.approx(0.8) and "auroc" in row
