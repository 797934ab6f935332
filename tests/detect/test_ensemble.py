"""Ensembles across tokenizers: z-scores against each model's human reference and their mean, checked
against hand computations; the CLI with two cheap models that tokenize differently (ngram, tiny)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from neumo.detect.ensemble import (
    EnsembleCalibration,
    Member,
    fit_ensemble,
    load_ensemble,
    mean_z,
    member_from,
    resolve_members,
    save_ensemble,
    z_score,
)
from neumo.detect.evaluate import Calibration, decide, fit_calibration, load_calibration, save_calibration
from neumo.errors import NeumoError


def _member(model, m, s, det="logrank"):
    return Member(model=model, detector=det, human_score_mean=m, human_score_std=s, calibration=f"{model}.json")


def test_calibration_keeps_the_human_mean_and_std():
    cal = fit_calibration([1.0, 2.0, 3.0, 6.0, 5.0], [0, 0, 0, 0, 1], detector="logrank", model="a", reference="r")
    assert cal.human_score_mean == 3.0
    assert cal.human_score_std == pytest.approx(np.sqrt((4 + 1 + 0 + 9) / 3))  # ddof 1
    assert fit_calibration([1.0, 5.0], [0, 1], detector="d", model="a", reference="r").human_score_std is None


def test_z_scores_and_their_mean_by_hand():
    a, b = _member("a", 3.0, 2.0), _member("b", -1.0, 0.5)
    assert z_score(7.0, a) == 2.0 and z_score(-2.0, b) == -2.0
    assert mean_z({"a": 7.0, "b": -0.5}, [a, b]) == pytest.approx((2.0 + 1.0) / 2)
    np.testing.assert_allclose(mean_z({"a": [3.0, 5.0], "b": [0.0, -1.0]}, [a, b]), [(0 + 2) / 2, (1 + 0) / 2])
    with pytest.raises(NeumoError, match="no score for ensemble member"):
        mean_z({"a": 1.0}, [a, b])


def test_fit_ensemble_thresholds_the_human_mean_z(tmp_path):
    a, b = _member("a", 0.0, 1.0), _member("b", 10.0, 2.0)
    sa = np.array([0.0, 1.0, -1.0, 3.0, 3.0, 4.0])
    sb = np.array([10.0, 8.0, 12.0, 14.0, 16.0, 10.0])
    y = [0, 0, 0, 0, 1, 1]
    z = (sa + (sb - 10.0) / 2.0) / 2  # human: 0, 0, 0, 2.5; machine: 3, 2
    cal = fit_ensemble({"a": sa, "b": sb}, y, [a, b], reference="ref", target_fpr=0.3)
    assert cal.threshold == 2.5  # smallest t with share of human mean z >= t at most 0.3 (1 of 4)
    assert cal.reference_auroc == pytest.approx((4 + 3) / 8) and cal.n_human == 4
    assert [decide(v, cal) for v in z[4:]] == ["machine", "human"]
    path = save_ensemble(cal, tmp_path / "e.json")
    back = load_ensemble(path)
    assert back.models == ["a", "b"] and back.threshold == 2.5 and back.source == str(path)
    assert back.detector == "mean_z(a:logrank, b:logrank)"
    raw = json.loads(path.read_text())
    path.write_text(json.dumps({**raw, "weights": [1, 2]}))
    with pytest.raises(NeumoError, match="not a neumo ensemble calibration"):
        load_ensemble(path)


def test_members_are_refused_when_they_do_not_fit():
    old = Calibration(detector="logrank", threshold=0.0, target_fpr=0.05, model="a", reference="r", n_human=2,
                      n_machine=2, fitted_at="t")
    with pytest.raises(NeumoError, match="no human score statistics.*refit it"):
        member_from(old)
    good = old.model_copy(update={"human_score_mean": 1.0, "human_score_std": 2.0, "source": "a.json"})
    assert member_from(good) == Member(model="a", detector="logrank", human_score_mean=1.0, human_score_std=2.0,
                                       calibration="a.json", fitted_at="t")
    with pytest.raises(NeumoError, match="model b has no calibration"):
        resolve_members(["a", "b"], {"a": good}, None)
    with pytest.raises(NeumoError, match="given twice"):
        resolve_members(["a", "a"], {"a": good}, None)
    ens = EnsembleCalibration(members=[_member("a", 1.0, 2.0), _member("c", 0.0, 1.0)], threshold=0.0,
                              target_fpr=0.05, reference="r", n_human=2, n_machine=2, fitted_at="t")
    with pytest.raises(NeumoError, match="combines a, c, not a, b"):
        resolve_members(["a", "b"], {}, ens)
    other = good.model_copy(update={"human_score_mean": 1.5})
    with pytest.raises(NeumoError, match="is not the a calibration the ensemble calibration"):
        resolve_members(["c", "a"], {"a": other}, ens)
    assert [m.model for m in resolve_members(["c", "a"], {"a": good}, ens)] == ["c", "a"]


REFERENCE = (
    [(t, 0) for t in ("The council met on Monday to discuss the state of local roads.",
                      "Police said a man was arrested in Sydney after the crash on Friday.",
                      "Fire crews worked through the night as the wind changed direction.",
                      "The minister will visit the flooded towns later this week.")]
    + [(t, 1) for t in ("the the the the the the the the the the the",
                        "and the and the and the and the and the",
                        "It is a very good thing that it is a very good thing.",
                        "of the of the of the of the of the of the")]
)
TEXTS = "Residents were told to stay inside until the smoke cleared.\nthe and the and the of the of the\n"


def test_cli_ensemble_of_ngram_and_tiny_is_the_hand_computed_mean_z(tmp_path, cli):
    ref = tmp_path / "ref.jsonl"
    ref.write_text("\n".join(json.dumps({"text": t, "label": y}) for t, y in REFERENCE))
    text = tmp_path / "t.txt"
    text.write_text(TEXTS)
    cals, single = {}, {}
    for model, det in (("ngram", "logrank"), ("tiny", "likelihood")):
        cals[model] = tmp_path / f"{model}.json"
        code, _, err = cli(["detect", "calibrate", str(ref), "-m", model, "-d", det, "--out", str(cals[model]),
                            "--band-boot", "0"])
        assert code == 0, err
        code, out, err = cli(["detect", "score", str(text), "--lines", "-m", model, "--calibration",
                              str(cals[model]), "--json"])
        assert code == 0, err
        single[model] = [r["scores"][det] for r in json.loads(out)]
    c = {m: json.loads(p.read_text()) for m, p in cals.items()}
    hand = [np.mean([(single[m][i] - c[m]["human_score_mean"]) / c[m]["human_score_std"] for m in c])
            for i in range(2)]
    argv = ["detect", "score", str(text), "--lines", "-m", "ngram", "-m", "tiny",
            "--calibration", str(cals["ngram"]), "--calibration", str(cals["tiny"])]
    code, out, err = cli(argv + ["--json"])
    assert code == 0, err
    rows = json.loads(out)
    np.testing.assert_allclose([r["score"] for r in rows], hand, rtol=1e-9)
    assert [r["verdict"] for r in rows] == ["undecided"] * 2 and rows[0]["members"][1]["detector"] == "likelihood"

    # an ensemble calibration fitted on the same reference decides, with the same mean z
    from neumo.detect.ensemble import calibrate_ensemble
    from neumo.detect.lm import load_lm

    lms = [load_lm("ngram"), load_lm("tiny")]
    assert lms[0].tokenizer_id != lms[1].tokenizer_id  # no shared token scores: only an ensemble combines them
    members = [member_from(load_calibration(cals[m])) for m in ("ngram", "tiny")]
    ens = calibrate_ensemble(ref, lms, members, target_fpr=0.25)
    ens_path = save_ensemble(ens, tmp_path / "ensemble-ngram+tiny.json")
    code, out, err = cli(["detect", "score", str(text), "--lines", "-m", "tiny", "-m", "ngram",
                          "--calibration", str(ens_path), "--json"])
    assert code == 0, err
    rows = json.loads(out)
    np.testing.assert_allclose([r["score"] for r in rows], hand, rtol=1e-9)
    assert [r["verdict"] for r in rows] == [decide(h, ens) for h in hand]
    assert rows[0]["threshold"]["calibration"] == str(ens_path)
    code, out, err = cli(argv + ["--calibration", str(ens_path)])  # text line: members and what decided
    flat = out.replace("\n", "")  # rich wraps long lines
    assert code == 0 and "ensemble mean z=" in flat and "z against" in flat and "ensemble-ngram+tiny.json" in flat


def test_cli_refuses_what_an_ensemble_cannot_do(tmp_path, cli):
    text = tmp_path / "t.txt"
    text.write_text(TEXTS)
    for extra, msg in ((["-d", "logrank"], "--detector picks detectors of one model"),
                       (["--performer", "ngram"], "--performer"),
                       ([], "model ngram has no calibration")):
        code, _, err = cli(["detect", "score", str(text), "-m", "ngram", "-m", "tiny"] + extra)
        assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    code, _, err = cli(["detect", "explain", str(text), "-m", "ngram", "-m", "tiny"])
    assert code == 2 and "explain shows one model's tokens" in err
    cal = tmp_path / "c.json"
    save_calibration(fit_calibration([0.0, 1.0], [0, 1], detector="logrank", model="ngram", reference="r"), cal)
    code, _, err = cli(["detect", "score", str(text), "-m", "ngram", "--calibration", str(cal), "--calibration",
                        str(cal)])
    assert code == 2 and "one --model takes one --calibration" in err


def test_the_shipped_ensemble_matches_the_shipped_member_calibrations():
    from neumo.detect.ensemble import plan_members, shipped_ensemble
    from neumo.detect.evaluate import default_calibration

    ens = shipped_ensemble(["gemma3-270m", "smollm2"])  # any order
    assert ens is not None and ens.source == "ensemble-smollm2+gemma3-270m.json (shipped)"
    members, found = plan_members(["smollm2", "gemma3-270m"], [])
    assert found == ens and [m.model for m in members] == ["smollm2", "gemma3-270m"]
    shipped = {m: default_calibration(m) for m in ("smollm2", "gemma3-270m")}
    assert resolve_members(["smollm2", "gemma3-270m"], shipped, ens) == members  # fitted with these files
    assert all(m.calibration == f"{m.model}.json (shipped)" for m in members)
