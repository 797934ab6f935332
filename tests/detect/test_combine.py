"""The supervised combiner: the fit equals scikit-learn's, held-out groups never reach training, save/load
round trip with validation, group names from file names, and `neumo detect fit` on the n-gram model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neumo.detect import combine as cb
from neumo.detect.pairs import SHIPPED_DIR
from neumo.errors import NeumoError

XSUM = SHIPPED_DIR / "xsum_gpt-neo-2.7B.raw_data.json.gz"
WRITING = SHIPPED_DIR / "writing_gpt-neo-2.7B.raw_data.json.gz"


def _data(n=120, f=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, f)) * [1.0, 10.0, 0.1, 3.0][:f] + y[:, None] * [1.0, 5.0, 0.05, 0.0][:f]
    return X, y


def test_fit_equals_sklearn_pipeline():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _data()
    scaler, coef, b = cb.fit_logistic(X, y, C=0.5)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000)).fit(X, y)
    np.testing.assert_allclose(coef, ref[-1].coef_[0], rtol=1e-10)
    np.testing.assert_allclose(scaler.mean, X.mean(0)) and np.testing.assert_allclose(scaler.scale, X.std(0))
    comb = _comb(scaler, coef, b)
    np.testing.assert_allclose(comb.decision(X), ref.decision_function(X), rtol=1e-9, atol=1e-12)
    with pytest.raises(NeumoError, match="one class"):
        cb.fit_logistic(X, np.zeros(len(y)))
    with pytest.raises(NeumoError, match="takes 4 features"):
        comb.decision(X[:, :3])


def _comb(scaler, coef, b, features=None):
    feats = features or [f"m:d{j}" for j in range(len(coef))]
    return cb.Combiner(features=feats, models=[cb.ScoringModel(name="m", precision="fp32")], max_tokens=128, C=1.0,
                       coef=coef, intercept=b, scaler=scaler, training_files=[], n=1, n_human=1, n_machine=0,
                       train_auroc=0.5, evaluation=[], fitted_at="now", neumo_version="0")


def test_leave_one_group_out_never_trains_on_the_held_out_group(monkeypatch):
    X, y = _data(90, 2)
    gen = np.repeat(["g1", "g2", "g3"], 30)
    dom = np.tile(np.repeat(["d1", "d2"], 15), 3)
    X = np.column_stack([X, np.arange(90)])              # column 2: the row's index, to see what trained
    groups = [{"generator": g, "domain": d} for g, d in zip(gen, dom)]
    seen = []
    real = cb.fit_logistic
    monkeypatch.setattr(cb, "fit_logistic", lambda Xt, yt, C=1.0: seen.append(Xt[:, 2].astype(int)) or real(Xt, yt, C))
    rows = cb.leave_one_group_out(X, y, groups, ["a", "b", "c"])
    assert [(r.grouping, r.held_out) for r in rows] == [("generator", "g1"), ("generator", "g2"), ("generator", "g3"),
                                                        ("domain", "d1"), ("domain", "d2")]
    for r, trained in zip(rows, seen):
        lab = gen if r.grouping == "generator" else dom
        assert set(trained) == set(np.flatnonzero(lab != r.held_out))      # all of the rest, none of the held-out
        assert r.n_test == int((lab == r.held_out).sum()) and r.n_train == len(trained)


def test_best_single_detector_is_chosen_on_the_training_groups():
    """Feature 0 separates the classes in group A only, feature 1 in group B only: held out B, the best single
    detector (chosen on A) is feature 0, which is at chance on B."""
    rng = np.random.default_rng(1)
    y = np.tile([0, 1], 100)
    a, b = np.arange(200) < 100, np.arange(200) >= 100
    X = rng.normal(size=(200, 2))
    X[a, 0] += 3 * y[a]
    X[b, 1] += 3 * y[b]
    rows = cb.leave_one_group_out(X, y, [{"group": "A" if i else "B"} for i in a], ["f0", "f1"])
    held_b = next(r for r in rows if r.held_out == "B")
    assert held_b.best_single == "f0" and abs(held_b.single_auroc - 0.5) < 0.15
    assert held_b.combiner_auroc < 0.75          # the combiner, fitted on A only, cannot know about f1 either


def test_groups_from_file_names_and_labels(tmp_path):
    assert cb.groups_from_name("xsum_gpt-neo-2.7B.raw_data.json.gz") == {"domain": "xsum", "generator": "gpt-neo-2.7B"}
    assert cb.groups_from_name("/x/squad_opt-2.7b.raw_data.json") == {"domain": "squad", "generator": "opt-2.7b"}
    assert cb.groups_from_name("mine.jsonl") is None
    with pytest.raises(NeumoError, match="--group LABEL"):
        cb.file_groups([tmp_path / "mine.jsonl"], None)
    with pytest.raises(NeumoError, match="once per file|one label per file"):
        cb.file_groups([XSUM, WRITING], ["a"])
    assert cb.groupings(cb.file_groups([XSUM, WRITING], None)) == ["domain"]       # one generator: domain only
    assert cb.groupings(cb.file_groups([XSUM, WRITING], ["a", "a"])) == []


def test_save_load_round_trip_and_validation(tmp_path):
    X, y = _data()
    comb = _comb(*cb.fit_logistic(X, y))
    p = cb.save_combiner(comb, tmp_path / "c.json")
    back = cb.load_combiner(p)
    assert back == comb
    np.testing.assert_array_equal(back.decision(X), comb.decision(X))
    doc = json.loads(p.read_text())
    for bad, match in [({**doc, "extra": 1}, "not a neumo combiner"), ({**doc, "coef": doc["coef"][:2]}, "lengths"),
                       ({**doc, "format": "other"}, "not a neumo combiner"),
                       ({**doc, "scaler": {"mean": doc["scaler"]["mean"], "scale": [0.0] * 4}}, "positive")]:
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        with pytest.raises(NeumoError, match=match):
            cb.load_combiner(tmp_path / "bad.json")
    with pytest.raises(NeumoError, match="does not exist"):
        cb.load_combiner(tmp_path / "nope.json")


def test_cli_fit_on_ngram_saves_provenance_and_held_out_rows(tmp_path, cli, ngram_lm):
    out = tmp_path / "comb.json"
    code, stdout, err = cli(["detect", "fit", str(XSUM), str(WRITING), "-m", "ngram", "--limit", "6",
                             "--max-tokens", "100", "--out", str(out), "--json"])
    assert code == 0, err
    doc = json.loads(stdout)
    comb = cb.load_combiner(out)
    assert comb.models == [cb.ScoringModel(name="ngram", precision="fp32")] and comb.max_tokens == 100
    assert comb.n == 24 and comb.n_human == comb.n_machine == 12 and comb.limit == 6
    assert [f.file for f in comb.training_files] == [XSUM.name, WRITING.name]
    import hashlib

    assert comb.training_files[0].sha256 == hashlib.sha256(XSUM.read_bytes()).hexdigest()
    assert comb.training_files[0].bytes == XSUM.stat().st_size
    assert [(r.grouping, r.held_out, r.n_test) for r in comb.evaluation] == [("domain", "xsum", 12),
                                                                             ("domain", "writing", 12)]
    assert doc["transfer"]["held_out"] == 2 and comb.features[0] == "ngram:likelihood"
    # the saved numbers give the in-sample fit back from the same features
    from neumo.detect.evaluate import auroc

    X = np.vstack([cb.file_features([ngram_lm], p, 6, 100)[0] for p in (XSUM, WRITING)])
    y = np.r_[np.zeros(6), np.ones(6), np.zeros(6), np.ones(6)]
    assert auroc(comb.decision(X), y) == pytest.approx(comb.train_auroc)
    code, stdout, _ = cli(["detect", "fit", str(XSUM), str(WRITING), "-m", "ngram", "--limit", "6",
                           "--max-tokens", "100", "--out", str(out)])
    assert code == 0 and "held out" in stdout and "best single" in stdout


def test_text_features_need_the_fitted_models(ngram_lm):
    X, y = _data(20, 2)
    comb = _comb(*cb.fit_logistic(X, y), features=["ngram:logrank", "ngram:entropy"])
    comb.models = [cb.ScoringModel(name="ngram", precision="fp32")]
    f = cb.text_features(comb, [ngram_lm], ["The council met on Monday.", "It rained all day in the north."])
    assert f.shape == (2, 2) and np.isfinite(comb.decision(f)).all()
    comb.models = [cb.ScoringModel(name="smollm2", precision="bf16")]
    with pytest.raises(NeumoError, match="fitted with smollm2"):
        cb.text_features(comb, [ngram_lm], ["text"])


# ---- the paired interval of the held-out AUROC gain ---------------------------------------------------------


def test_paired_auroc_gain_matches_a_loop_over_resamples():
    from neumo.detect.combine import paired_auroc_gain
    from neumo.detect.evaluate import auroc
    from neumo.seeding import numpy_rng

    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(9), np.ones(7)].astype(int)
    a = rng.normal(size=16) + y
    b = np.round(rng.normal(size=16) + 0.5 * y, 1)  # ties inside b
    g, lo, hi = paired_auroc_gain(a, b, y, n_boot=150, seed=4)
    assert g == pytest.approx(auroc(a, y) - auroc(b, y), abs=1e-12)
    # the oracle: the same resamples drawn one by one, AUROCs from scipy's ranks (evaluate.auroc)
    r = numpy_rng(4, "auroc_gain")
    i1, i0 = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    reps = []
    for start in range(0, 150, 100):
        k = min(100, 150 - start)
        R1, R0 = r.choice(i1, (k, len(i1))), r.choice(i0, (k, len(i0)))
        for j in range(k):
            idx = np.r_[R1[j], R0[j]]
            reps.append(auroc(a[idx], y[idx]) - auroc(b[idx], y[idx]))
    assert lo == pytest.approx(np.quantile(reps, 0.025), abs=1e-12)
    assert hi == pytest.approx(np.quantile(reps, 0.975), abs=1e-12)


def test_paired_auroc_gain_of_a_score_against_itself_is_exactly_zero_and_a_clear_win_excludes_zero():
    from neumo.detect.combine import paired_auroc_gain

    y = np.r_[np.zeros(40), np.ones(40)].astype(int)
    s = np.random.default_rng(0).normal(size=80)
    assert paired_auroc_gain(s, s, y, n_boot=200) == (0.0, 0.0, 0.0)
    g, lo, hi = paired_auroc_gain(s + 3 * y, s, y, n_boot=200)
    assert g > 0.3 and lo > 0
    with pytest.raises(NeumoError, match="both human"):
        paired_auroc_gain(s[:40], s[:40], y[:40])
