import numpy as np
import pytest

from neumo.detect import explain
from neumo.detect.analyze import analyze_text
from neumo.detect.evaluate import fit_calibration, load_calibration, save_calibration
from neumo.detect.registry import detector_names
from neumo.detect.schema import DetectionResult
from neumo.detect.score import score_text
from neumo.errors import NeumoError

TEXT = "The fire crews worked through the night. Residents were told to stay inside! Roads are closed."


def test_analyze_text_contract(ngram_lm):
    r = analyze_text(TEXT, ngram_lm)
    assert isinstance(r, DetectionResult)
    assert r.model == "ngram" and r.n_tokens == len(TEXT)
    assert set(r.scores) == set(detector_names())
    assert r.verdict == "undecided" and r.threshold is None
    assert "".join(t.token for t in r.tokens) == TEXT
    assert [s.text.strip() for s in r.sentences] == ["The fire crews worked through the night.",
                                                    "Residents were told to stay inside!", "Roads are closed."]
    assert r.sentences[0].start_token == 0 and r.sentences[-1].end_token == r.n_tokens
    assert all(t.rank >= 1 for t in r.tokens)
    DetectionResult.model_validate_json(r.model_dump_json())


def test_evidence_sums_to_fast_detectgpt(ngram_lm):
    s = score_text(ngram_lm, TEXT)
    r = analyze_text(TEXT, ngram_lm)
    ev = np.array([t.evidence for t in r.tokens])
    assert ev.sum() / np.sqrt(s.n) == pytest.approx(r.scores["fast_detectgpt"], rel=1e-9)
    assert explain.criterion(s) == pytest.approx(r.scores["fast_detectgpt"], rel=1e-9)


def test_mechanisms_are_token_fractions(ngram_lm):
    r = analyze_text(TEXT, ngram_lm)
    m = r.mechanisms
    assert m["frac_outside_top_p"] == pytest.approx(np.mean([not t.in_top_p for t in r.tokens]))
    assert m["frac_outside_top_k"] == pytest.approx(np.mean([not t.in_top_k for t in r.tokens]))
    assert m["mean_logprob"] == pytest.approx(np.mean([t.logprob for t in r.tokens]))
    assert m["frac_long_tail"] == 0.0                    # an 82-symbol vocabulary has no rank > 1000
    assert any("top-p=0.9" in n for n in r.notes)


def test_calibrated_verdict_and_provenance(ngram_lm, tmp_path):
    cal = fit_calibration([0.1, 0.2, 0.3, 0.9], [0, 0, 0, 1], detector="likelihood", model="ngram",
                          reference="toy", target_fpr=0.34, human_reference={"mean_logprob": -2.0})
    path = save_calibration(cal, tmp_path / "cal.json")
    loaded = load_calibration(path)
    assert loaded == cal and loaded.threshold == pytest.approx(0.3)
    r = analyze_text(TEXT, ngram_lm, detectors=["logrank"], calibration=path)
    assert r.threshold.reference == "toy" and r.threshold.n == 4
    assert set(r.scores) == {"logrank", "likelihood"}
    assert r.verdict == ("machine" if r.scores["likelihood"] >= 0.3 else "human")
    assert r.mechanisms["delta_logprob_vs_human"] == pytest.approx(r.mechanisms["mean_logprob"] + 2.0)


def test_bad_inputs(ngram_lm, tmp_path):
    for bad in ["", "  \n "]:
        with pytest.raises(NeumoError, match="empty"):
            analyze_text(bad, ngram_lm)
    with pytest.raises(NeumoError, match="unknown detector"):
        analyze_text(TEXT, ngram_lm, detectors=["nope"])
    cal = fit_calibration([0.1, 0.9], [0, 1], detector="likelihood", model="smollm2", reference="x")
    with pytest.raises(NeumoError, match="fitted with model 'smollm2'"):
        analyze_text(TEXT, ngram_lm, calibration=cal)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(NeumoError, match="not a neumo calibration"):
        load_calibration(tmp_path / "bad.json")


def test_long_text_beyond_any_window(ngram_lm):
    from neumo.detect.analyze import result_from_stats

    text = "word " * 300
    s = score_text(ngram_lm, text, window=64, stride=32)
    r = result_from_stats(s)
    assert r.n_tokens == len(text)
