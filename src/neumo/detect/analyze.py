"""One call from a text to a :class:`DetectionResult`: score, detectors, verdict, evidence, mechanisms."""

from __future__ import annotations

from pathlib import Path

from neumo.detect import explain
from neumo.detect.evaluate import Calibration, load_calibration
from neumo.detect.lm.base import CausalLM
from neumo.detect.registry import compute_scores, resolve
from neumo.detect.schema import DetectionResult, SentenceScore, ThresholdInfo, TokenEvidence
from neumo.detect.score import TokenStats, score_text
from neumo.errors import NeumoError


def _calibration(cal) -> Calibration | None:
    if cal is None or isinstance(cal, Calibration):
        return cal
    if isinstance(cal, (str, Path)):
        return load_calibration(cal)
    raise NeumoError(f"calibration must be a Calibration or a path to its JSON file, not {type(cal).__name__}")


def result_from_stats(stats: TokenStats, detectors: list[str] | None = None, calibration=None) -> DetectionResult:
    cal = _calibration(calibration)
    names = resolve(detectors)
    if cal is not None:
        if cal.model != stats.model:
            raise NeumoError(f"the calibration was fitted with model {cal.model!r}, not {stats.model!r}; "
                             f"score with --model {cal.model} or fit a calibration for {stats.model}")
        if cal.detector not in names:
            names = names + [cal.detector]
    scores = compute_scores(stats, names)
    threshold, verdict = None, "undecided"
    if cal is not None:
        threshold = ThresholdInfo(detector=cal.detector, value=cal.threshold, reference=cal.reference,
                                  n=cal.n_human + cal.n_machine, fitted_at=cal.fitted_at, target_fpr=cal.target_fpr)
        verdict = "machine" if scores[cal.detector] >= cal.threshold else "human"
    ev = explain.token_evidence(stats)
    tokens = [TokenEvidence(token=stats.pieces[i], logprob=float(stats.logprob[i]), rank=int(stats.rank[i]),
                            entropy=float(stats.entropy[i]), in_top_p=bool(stats.in_top_p[i]),
                            in_top_k=bool(stats.in_top_k[i]), evidence=float(ev[i])) for i in range(stats.n)]
    sentences = [SentenceScore(text=t, start_token=a, end_token=b, score=explain.criterion(stats, a, b))
                 for t, a, b in explain.sentence_spans(stats.pieces)]
    mech = explain.mechanisms(stats, cal.human_reference if cal else None)
    return DetectionResult(model=stats.model, n_tokens=stats.n, scores=scores, verdict=verdict, threshold=threshold,
                           tokens=tokens, sentences=sentences, mechanisms=mech,
                           notes=explain.notes(mech, stats.n))


def analyze_text(text: str, lm: CausalLM, detectors: list[str] | None = None, calibration=None,
                 max_tokens: int | None = None) -> DetectionResult:
    """Score ``text`` with ``lm``; the verdict needs a calibration (else ``undecided``)."""
    if not isinstance(text, str) or not text.strip():
        raise NeumoError("the text is empty or whitespace only; give at least one word to analyse")
    resolve(detectors)                                   # fail on a bad name before the forward pass
    return result_from_stats(score_text(lm, text, max_tokens=max_tokens), detectors, calibration)
