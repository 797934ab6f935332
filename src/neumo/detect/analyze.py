"""From texts to :class:`DetectionResult`: score, detectors, verdict, evidence, mechanisms.

:func:`analyze_texts` scores many texts in one batched pass (right-padded, masked; per-text results equal
the unbatched ones within float tolerance, tested); :func:`analyze_text` is the one-text case. The verdict
comes from a calibration (:func:`neumo.detect.evaluate.decide`: threshold and uncertainty band); without
one it is ``undecided``. Callers that want the shipped default pass
:func:`neumo.detect.evaluate.default_calibration` (the CLI and the server do). Two-model detectors
(Binoculars) need ``performer=``, a second model with the scoring model's tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from neumo.detect import explain
from neumo.detect.evaluate import Calibration, decide, load_calibration
from neumo.detect.lm.base import CausalLM
from neumo.detect.registry import PERFORMER_HINT, TWO_MODEL, compute_scores, split_detectors
from neumo.detect.schema import DetectionResult, SentenceScore, ThresholdInfo, TokenEvidence
from neumo.detect.score import TokenStats, check_max_tokens, score_texts
from neumo.errors import NeumoError

if TYPE_CHECKING:
    from neumo.detect.ensemble import EnsembleCalibration


def _calibration(cal) -> Calibration | None:
    if cal is None or isinstance(cal, Calibration):
        return cal
    if isinstance(cal, (str, Path)):
        return load_calibration(cal)
    raise NeumoError(f"calibration must be a Calibration or a path to its JSON file, not {type(cal).__name__}")


def _one_pass(detectors: list[str] | None) -> list[str]:
    return split_detectors(detectors)[0]


def threshold_info(cal: Calibration | EnsembleCalibration) -> ThresholdInfo:
    """What decided a verdict: a one-model or an ensemble calibration (the same fields)."""
    return ThresholdInfo(
        detector=cal.detector,
        value=cal.threshold,
        reference=cal.reference,
        n=cal.n_human + cal.n_machine,
        fitted_at=cal.fitted_at,
        target_fpr=cal.target_fpr,
        calibration=cal.source,
        band=cal.band,
    )


def result_from_stats(
    stats: TokenStats,
    detectors: list[str] | None = None,
    calibration=None,
    extra_scores: dict[str, float] | None = None,
    precision: str = "fp32",
) -> DetectionResult:
    """The result of one scored text; ``extra_scores`` are two-model scores computed elsewhere."""
    cal = _calibration(calibration)
    extra = dict(extra_scores or {})
    names = _one_pass(detectors)
    if cal is not None:
        if cal.model != stats.model:
            raise NeumoError(
                f"the calibration was fitted with model {cal.model!r}, not {stats.model!r}; "
                f"score with --model {cal.model} or fit a calibration for {stats.model}"
            )
        if cal.detector not in names and cal.detector not in extra:
            names = names + [cal.detector]
    scores = compute_scores(stats, names) if names else {}
    scores.update(extra)
    threshold, verdict = None, "undecided"
    if cal is not None:
        threshold, verdict = threshold_info(cal), decide(scores[cal.detector], cal)
    ev = explain.token_evidence(stats)
    tokens = [
        TokenEvidence(
            token=stats.pieces[i],
            logprob=float(stats.logprob[i]),
            rank=int(stats.rank[i]),
            entropy=float(stats.entropy[i]),
            in_top_p=bool(stats.in_top_p[i]),
            in_top_k=bool(stats.in_top_k[i]),
            evidence=float(ev[i]),
        )
        for i in range(stats.n)
    ]
    sentences = [
        SentenceScore(text=t, start_token=a, end_token=b, score=explain.criterion(stats, a, b))
        for t, a, b in explain.sentence_spans(stats.pieces)
    ]
    mech = explain.mechanisms(stats, cal.human_reference if cal else None)
    notes = explain.notes(mech, stats.n)
    if cal is not None and (cal.precision or "fp32") != precision:
        notes.append(
            f"The calibration was fitted at {cal.precision or 'fp32'} and this text scored at {precision} "
            "(bench/README.md: the AUROC difference between precisions)."
        )
    return DetectionResult(
        model=stats.model,
        precision=precision,
        n_tokens=stats.n,
        scores=scores,
        verdict=verdict,
        threshold=threshold,
        tokens=tokens,
        sentences=sentences,
        mechanisms=mech,
        notes=notes,
    )


def analyze_texts(
    texts: list[str],
    lm: CausalLM,
    detectors: list[str] | None = None,
    calibration=None,
    max_tokens: int | None = None,
    batch_size: int = 8,
    performer: CausalLM | None = None,
) -> list[DetectionResult]:
    """Score ``texts`` with ``lm`` in batches of ``batch_size`` windows; one result per text."""
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise NeumoError(f"text {i} is empty or whitespace only; give at least one word to analyse")
    _, two = split_detectors(detectors)  # fail on a bad name before the forward pass
    cal = _calibration(calibration)
    if cal is not None and cal.detector in TWO_MODEL and cal.detector not in two:
        two = two + [cal.detector]
    if two and performer is None:
        raise NeumoError(PERFORMER_HINT)
    extra: list[dict[str, float]] = [{} for _ in texts]
    if two:
        from neumo.detect.binoculars import binoculars

        assert performer is not None  # ``two`` is only set with a performer (PERFORMER_HINT above)
        for i, b in enumerate(binoculars(lm, performer, texts, max_tokens=check_max_tokens(max_tokens))):
            extra[i]["binoculars"] = b
    stats = score_texts(lm, texts, max_tokens=max_tokens, batch_size=batch_size)
    return [
        result_from_stats(s, detectors, cal, extra[i], precision=getattr(lm, "precision", "fp32"))
        for i, s in enumerate(stats)
    ]


def analyze_text(
    text: str,
    lm: CausalLM,
    detectors: list[str] | None = None,
    calibration=None,
    max_tokens: int | None = None,
    performer: CausalLM | None = None,
) -> DetectionResult:
    """Score ``text`` with ``lm``; the verdict needs a calibration (else ``undecided``)."""
    if not isinstance(text, str) or not text.strip():
        raise NeumoError("the text is empty or whitespace only; give at least one word to analyse")
    return analyze_texts([text], lm, detectors, calibration, max_tokens=max_tokens, performer=performer)[0]
