"""The calibration's uncertainty band, the verdict rule, and the shipped calibration as the default."""

import json

import numpy as np
import pytest

from neumo.detect.analyze import analyze_text
from neumo.detect.evaluate import (Calibration, decide, fit_calibration, fit_threshold, load_calibration,
                                   save_calibration, threshold_band)
from neumo.errors import NeumoError

TEXT = "The fire crews worked through the night. Residents were told to stay inside.\n"


def _cal(threshold, band, detector="likelihood", model="ngram"):
    return Calibration(detector=detector, threshold=threshold, target_fpr=0.05, model=model, reference="hand-made",
                       n_human=10, n_machine=10, fitted_at="2026-12-03T00:00:00+00:00", band=band)


def test_decide_by_hand():
    cal = _cal(0.0, (-1.0, 1.0))
    assert [decide(s, cal) for s in (-2.0, -1.0, 0.0, 0.999, 1.0, 3.0)] == \
        ["human", "undecided", "undecided", "undecided", "machine", "machine"]
    plain = _cal(0.0, None)                       # no band: the threshold decides every score
    assert [decide(s, plain) for s in (-1e-9, 0.0)] == ["human", "machine"]


def test_band_is_the_bootstrap_interval_of_the_threshold():
    h = np.arange(100, dtype=float)               # 5% FPR on 0..99: threshold 95 (5 humans at or above)
    t = fit_threshold(h, 0.05)
    lo, hi = threshold_band(h, 0.05, n_boot=500, seed=0)
    assert t == 95 and lo <= t <= hi and hi - lo >= 2        # the threshold of a resample moves by a few ranks
    # oracle: the same percentile interval computed here, with the same generator stream
    from neumo.seeding import numpy_rng

    g = numpy_rng(0, "threshold-band")
    vals = [fit_threshold(h[g.integers(0, 100, 100)], 0.05) for _ in range(500)]
    assert (lo, hi) == (min(t, np.quantile(vals, 0.025)), max(t, np.quantile(vals, 0.975)))
    assert threshold_band(h, 0.05, n_boot=500, seed=0) == (lo, hi)          # deterministic per seed
    with pytest.raises(NeumoError, match="'n_boot' parameter"):
        threshold_band(h, 0.05, n_boot=0)


def test_fit_calibration_stores_the_band_and_it_round_trips(tmp_path):
    scores = list(np.linspace(0, 1, 40)) + list(np.linspace(0.8, 2, 40))
    cal = fit_calibration(scores, [0] * 40 + [1] * 40, detector="likelihood", model="ngram", reference="toy",
                          band_boot=200, precision="fp32")
    assert cal.band[0] <= cal.threshold <= cal.band[1] and "200 bootstrap resamples" in cal.band_method
    loaded = load_calibration(save_calibration(cal, tmp_path / "c.json"))
    assert loaded == cal and loaded.source == str(tmp_path / "c.json")
    assert "source" not in json.loads((tmp_path / "c.json").read_text())
    assert fit_calibration(scores, [0] * 40 + [1] * 40, detector="likelihood", model="ngram",
                           reference="toy").band is None                  # library default: no band


def test_a_score_inside_the_band_is_undecided(ngram_lm):
    s = analyze_text(TEXT, ngram_lm, detectors=["likelihood"]).scores["likelihood"]
    inside = analyze_text(TEXT, ngram_lm, calibration=_cal(s, (s - 0.5, s + 0.5)))
    assert inside.verdict == "undecided" and inside.threshold.band == (s - 0.5, s + 0.5)
    assert analyze_text(TEXT, ngram_lm, calibration=_cal(s, (s - 0.5, s))).verdict == "machine"
    assert analyze_text(TEXT, ngram_lm, calibration=_cal(s + 1, (s + 0.5, s + 2))).verdict == "human"


def test_a_band_that_misses_its_threshold_is_refused(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(_cal(0.0, (1.0, 2.0)).model_dump_json())
    with pytest.raises(NeumoError, match="does not hold the threshold"):
        load_calibration(p)


def test_the_shipped_calibration_has_a_band():
    from neumo.detect.evaluate import default_calibration

    cal = default_calibration("smollm2")
    assert cal.band is not None and cal.band[0] <= cal.threshold <= cal.band[1] and cal.band_method
    assert cal.source == "smollm2.json (shipped)" and default_calibration("ngram") is None


@pytest.fixture
def shipped_for_ngram(tmp_path, monkeypatch, ngram_lm):
    """A calibration fitted for the n-gram model, installed as if it shipped (the wiring, in seconds)."""
    import neumo.detect.evaluate as ev

    s = analyze_text(TEXT, ngram_lm, detectors=["logrank"]).scores["logrank"]
    cal = Calibration(detector="logrank", threshold=s - 1.0, target_fpr=0.05, model="ngram", reference="toy ref",
                      n_human=4, n_machine=4, fitted_at="2026-12-03T00:00:00+00:00", band=(s - 1.5, s - 1.0))
    folder = tmp_path / "calibrations"
    save_calibration(cal, folder / "ngram.json")
    monkeypatch.setattr(ev, "SHIPPED_CALIBRATIONS", folder.resolve())
    return cal


def test_score_and_explain_use_the_shipped_calibration_by_default(tmp_path, cli, shipped_for_ngram):
    f = tmp_path / "t.txt"
    f.write_text(TEXT)
    code, out, _ = cli(["detect", "score", str(f), "-m", "ngram", "--json", "-d", "likelihood"])
    r = json.loads(out)[0]
    assert code == 0 and r["verdict"] == "machine" and r["threshold"]["calibration"] == "ngram.json (shipped)"
    assert r["threshold"]["detector"] == "logrank" and r["threshold"]["target_fpr"] == 0.05
    assert set(r["scores"]) == {"likelihood", "logrank"}
    code, out, _ = cli(["detect", "score", str(f), "-m", "ngram"])
    assert code == 0 and out.startswith("machine") and "calibration ngram.json (shipped)" in out
    assert "logrank >= " in out and "5% FPR" in out
    code, out, _ = cli(["detect", "explain", str(f), "-m", "ngram", "--json"])
    r = json.loads(out)
    assert code == 0 and r["verdict"] == "machine" and r["threshold"]["calibration"] == "ngram.json (shipped)"
    code, out, _ = cli(["detect", "explain", str(f), "-m", "ngram"])
    assert code == 0 and "verdict machine" in out and "ngram.json (shipped)" in out


def test_score_names_the_given_calibration_file(tmp_path, cli, ngram_lm):
    f = tmp_path / "t.txt"
    f.write_text(TEXT)
    s = analyze_text(TEXT, ngram_lm, detectors=["likelihood"]).scores["likelihood"]
    path = save_calibration(_cal(s, (s - 0.1, s + 0.1)), tmp_path / "mine.json")
    code, out, _ = cli(["detect", "score", str(f), "-m", "ngram", "--calibration", str(path), "--json"])
    r = json.loads(out)[0]
    assert code == 0 and r["verdict"] == "undecided" and r["threshold"]["calibration"] == str(path)
    assert r["threshold"]["band"] == [s - 0.1, s + 0.1]


def test_calibrate_fits_a_band_by_default(tmp_path, cli):
    data = tmp_path / "ref.jsonl"
    rows = [{"text": f"The council met on day {i} to discuss the roads.", "label": 0} for i in range(6)]
    rows += [{"text": "the the the the the the " * (1 + i % 2), "label": 1} for i in range(6)]
    data.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "cal.json"
    code, text, _ = cli(["detect", "calibrate", str(data), "-m", "ngram", "-d", "likelihood", "--out", str(out),
                         "--band-boot", "50"])
    saved = json.loads(out.read_text())
    assert code == 0 and saved["band"][0] <= saved["threshold"] <= saved["band"][1] and "undecided in" in text
    assert saved["precision"] == "fp32"
    code, _, _ = cli(["detect", "calibrate", str(data), "-m", "ngram", "--out", str(out), "--band-boot", "0"])
    assert code == 0 and json.loads(out.read_text())["band"] is None


@pytest.mark.slow
def test_smollm2_score_and_explain_give_a_verdict_with_the_shipped_calibration(tmp_path, cli):
    f = tmp_path / "t.txt"
    f.write_text("The fire crews worked through the night to hold the line north of the town, officials said. "
                 "Residents were told to stay inside and keep their windows shut.")
    code, out, _ = cli(["detect", "score", str(f), "--json"])
    r = json.loads(out)[0]
    assert code == 0 and r["threshold"]["calibration"] == "smollm2.json (shipped)"
    shipped = load_calibration(__import__("neumo.detect.evaluate", fromlist=["x"]).shipped_calibration("smollm2"))
    assert r["threshold"]["detector"] == shipped.detector == "specdetect"
    assert r["verdict"] in ("machine", "human", "undecided") and r["verdict"] == decide(r["scores"]["specdetect"], shipped)
    code, out, _ = cli(["detect", "explain", str(f), "--json"])
    e = json.loads(out)
    assert code == 0 and e["verdict"] == r["verdict"] and e["threshold"] == r["threshold"]
