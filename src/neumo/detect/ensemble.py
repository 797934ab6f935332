"""Ensembles across tokenizers: the calibrated per-text scores of several scoring models, combined.

Two models with different tokenizers cannot share a per-token score (Binoculars needs one tokenizer), but
each gives a per-text score: the detector of its calibration. Each calibration also holds the mean m and the
standard deviation s (ddof 1) of that score over its reference's human texts (``human_score_mean`` /
``human_score_std``, written by ``neumo detect calibrate``). The ensemble score of a text is the mean, with
equal weights, of the members' z-scores z = (score - m) / s: how far above typical human text each model puts
it, in units of that model's human spread.

Its verdict comes from an *ensemble calibration* (:class:`EnsembleCalibration`, a JSON file with
``"kind": "ensemble"``): a threshold on the mean z fitted like a one-model one (:func:`fit_threshold`, the
band of :func:`threshold_band`) on the human texts of a reference set at a target FPR. It stores each
member's model, detector, m and s (copied from the member calibrations it was fitted with, and their names),
so it decides on its own. neumo ships ``calibrations/ensemble-<model>+<model>.json`` for the pairs it
fitted (:func:`shipped_ensemble`, matched by the set of models); without one the verdict is ``undecided``.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neumo.detect.evaluate import (
    SHIPPED_CALIBRATIONS,
    Calibration,
    auroc,
    calibration_from_bytes,
    decide,
    fit_threshold,
    read_calibration,
    threshold_band,
)
from neumo.detect.analyze import threshold_info
from neumo.detect.schema import ThresholdInfo
from neumo.errors import NeumoError

ENSEMBLE_PREFIX = "ensemble-"


class Member(BaseModel):
    """One model of an ensemble: how its score is z-scored, and the calibration that gave m and s."""

    model_config = ConfigDict(extra="forbid")

    model: str
    detector: str
    human_score_mean: float
    human_score_std: float = Field(gt=0)
    calibration: str  # the member calibration m and s were taken from (its file name or reference)
    precision: str | None = None
    fitted_at: str | None = None


class EnsembleCalibration(BaseModel):
    """A threshold on the mean z-score of ``members`` with its provenance (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ensemble"] = "ensemble"
    combine: Literal["mean_z"] = "mean_z"
    members: list[Member] = Field(min_length=2)
    threshold: float
    target_fpr: float
    reference: str
    n_human: int
    n_machine: int
    fitted_at: str
    reference_auroc: float | None = None
    max_tokens: int | None = None
    band: tuple[float, float] | None = None
    band_method: str | None = None
    source: str | None = Field(None, exclude=True)  # where it was read from (set on load)

    @property
    def models(self) -> list[str]:
        return [m.model for m in self.members]

    @property
    def detector(self) -> str:
        """How the score is made, e.g. ``mean_z(smollm2:logrank, gemma3-270m:fast_detectgpt)``."""
        return "mean_z(" + ", ".join(f"{m.model}:{m.detector}" for m in self.members) + ")"


class MemberScore(BaseModel):
    model: str
    precision: str
    detector: str
    score: float
    z: float
    n_tokens: int
    calibration: str


class EnsembleResult(BaseModel):
    """The ensemble verdict on one text (``score``: the mean z of its members)."""

    score: float
    verdict: Literal["machine", "human", "undecided"]
    members: list[MemberScore]
    threshold: ThresholdInfo | None = None
    member_calibrations: list[str] = Field(default_factory=list)


def member_from(cal: Calibration) -> Member:
    """The ensemble member a one-model calibration defines; refused without human score statistics."""
    name = cal.source or f"the {cal.model} calibration"
    if cal.human_score_mean is None or cal.human_score_std is None:
        raise NeumoError(
            f"{name} has no human score statistics (human_score_mean/std), so {cal.model} cannot join an "
            f"ensemble; refit it with 'neumo detect calibrate'"
        )
    if not cal.human_score_std > 0:
        raise NeumoError(f"{name}: its human scores all equal {cal.human_score_mean}; a z-score needs a spread")
    return Member(
        model=cal.model,
        detector=cal.detector,
        human_score_mean=cal.human_score_mean,
        human_score_std=cal.human_score_std,
        calibration=cal.source or cal.reference,
        precision=cal.precision,
        fitted_at=cal.fitted_at,
    )


def z_score(score, member: Member):
    """(score - m) / s of one member (works on arrays)."""
    return (np.asarray(score, np.float64) - member.human_score_mean) / member.human_score_std


def mean_z(scores: Mapping[str, Any], members: list[Member]):
    """The ensemble score: the mean over ``members`` of their z-scores; ``scores`` maps model -> score(s)."""
    missing = [m.model for m in members if m.model not in scores]
    if missing:
        raise NeumoError(f"no score for ensemble member(s) {', '.join(missing)}")
    return np.mean([z_score(scores[m.model], m) for m in members], axis=0)


def check_models(models: list[str]) -> None:
    if len(models) < 2:
        raise NeumoError("an ensemble needs at least two --model")
    dup = sorted({m for m in models if models.count(m) > 1})
    if dup:
        raise NeumoError(f"--model {dup[0]} is given twice; an ensemble combines different models")


def fit_ensemble(
    member_scores: dict[str, np.ndarray],
    labels,
    members: list[Member],
    *,
    reference: str,
    target_fpr: float = 0.05,
    max_tokens: int | None = None,
    band_boot: int = 0,
    seed: int = 0,
) -> EnsembleCalibration:
    """A threshold at ``target_fpr`` on the mean z of the human texts of a reference set (``member_scores``:
    model -> the member detector's score per text, aligned with ``labels``), and its band when ``band_boot`` >
    0 (as :func:`neumo.detect.evaluate.fit_calibration`)."""
    check_models([m.model for m in members])
    s, y = np.asarray(mean_z(member_scores, members), np.float64), np.asarray(labels).astype(int)
    h = s[y == 0]
    band = threshold_band(h, target_fpr, band_boot, seed=seed) if band_boot else None
    method = (
        f"95% percentile interval of the threshold over {band_boot} bootstrap resamples of the {len(h)} human "
        f"mean z-scores (seed {seed})"
        if band_boot
        else None
    )
    return EnsembleCalibration(
        members=members,
        threshold=fit_threshold(h, target_fpr),
        target_fpr=target_fpr,
        reference=reference,
        n_human=int((y == 0).sum()),
        n_machine=int((y == 1).sum()),
        fitted_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        reference_auroc=auroc(s, y) if (y == 1).any() and (y == 0).any() else None,
        max_tokens=max_tokens,
        band=band,
        band_method=method,
    )


def member_file_evals(
    path: str | Path,
    lms: list,
    members: list[Member],
    detectors: list[str] | None = None,
    limit: int | None = None,
    max_tokens: int | None = None,
    n_boot: int = 0,
    seed: int = 0,
    batch_size: int = 8,
) -> tuple[list, np.ndarray]:
    """One :func:`neumo.detect.datasets.evaluate_file` per member (pair files: continuations only, as
    ``neumo detect eval``) of its detector and ``detectors`` (``None``: every one-pass detector), and the
    labels; the texts are read once per model, in the same order."""
    from neumo.detect.datasets import evaluate_file
    from neumo.detect.registry import detector_names

    if [lm.name for lm in lms] != [m.model for m in members]:
        raise NeumoError("the scoring models and the ensemble members must be the same models, in order")
    evals, labels = [], None
    for lm, m in zip(lms, members):
        names = list(dict.fromkeys([m.detector] + (detector_names() if detectors is None else list(detectors))))
        fe = evaluate_file(
            lm, Path(path), names, limit=limit, max_tokens=max_tokens, n_boot=n_boot, seed=seed, batch_size=batch_size
        )
        if labels is not None and not np.array_equal(labels, fe.labels):
            raise NeumoError(f"{path}: the models read different texts")  # pragma: no cover - one reader
        evals.append(fe)
        labels = fe.labels
    assert labels is not None  # members has at least two entries
    return evals, labels


def member_scores_file(
    path: str | Path,
    lms: list,
    members: list[Member],
    limit: int | None = None,
    max_tokens: int | None = None,
    batch_size: int = 8,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each member's detector score on every text of a labelled file (:func:`member_file_evals`), and the labels."""
    evals, labels = member_file_evals(path, lms, members, [], limit=limit, max_tokens=max_tokens, batch_size=batch_size)
    return {m.model: fe.scores[m.detector] for m, fe in zip(members, evals)}, labels


def calibrate_ensemble(
    path: str | Path,
    lms: list,
    members: list[Member],
    *,
    reference: str | None = None,
    target_fpr: float = 0.05,
    limit: int | None = None,
    max_tokens: int | None = None,
    band_boot: int = 0,
    seed: int = 0,
) -> EnsembleCalibration:
    """:func:`fit_ensemble` on a labelled reference file scored by each of ``lms`` (aligned with ``members``)."""
    scores, labels = member_scores_file(path, lms, members, limit=limit, max_tokens=max_tokens)
    return fit_ensemble(
        scores,
        labels,
        members,
        reference=reference or Path(path).name,
        target_fpr=target_fpr,
        max_tokens=max_tokens,
        band_boot=band_boot,
        seed=seed,
    )


def is_ensemble_document(raw: bytes) -> bool:
    """Whether ``raw`` is a JSON object of ``"kind": "ensemble"`` (anything unparsable: False)."""
    try:
        d = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return False
    return isinstance(d, dict) and d.get("kind") == "ensemble"


def load_ensemble(path: str | Path) -> EnsembleCalibration:
    """An ensemble calibration from a file or a shipped name, read once with the calibrations' bound."""
    return ensemble_from_bytes(*read_calibration(path))


def ensemble_from_bytes(p: Path, raw: bytes) -> EnsembleCalibration:
    try:
        cal = EnsembleCalibration.model_validate_json(raw.decode("utf-8"))
    except (ValidationError, UnicodeDecodeError) as e:
        raise NeumoError(f"{p} is not a neumo ensemble calibration file ({str(e).splitlines()[0]})") from e
    check_models(cal.models)
    if cal.band is not None and not cal.band[0] <= cal.threshold <= cal.band[1]:
        raise NeumoError(f"{p}: the band {list(cal.band)} does not hold the threshold {cal.threshold}; refit it")
    cal.source = f"{p.name} (shipped)" if p.resolve().parent == SHIPPED_CALIBRATIONS else str(p)
    return cal


def save_ensemble(cal: EnsembleCalibration, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(cal.model_dump_json(indent=2), encoding="utf-8")
    return p


def ensemble_file_name(models: list[str]) -> str:
    """``ensemble-<model>+<model>.json``: the name neumo ships an ensemble calibration under."""
    return ENSEMBLE_PREFIX + "+".join(models) + ".json"


def shipped_ensemble(models: list[str]) -> EnsembleCalibration | None:
    """The shipped ensemble calibration of exactly these models (in any order), if any."""
    for p in sorted(SHIPPED_CALIBRATIONS.glob(ENSEMBLE_PREFIX + "*.json")):
        cal = load_ensemble(p)
        if sorted(cal.models) == sorted(models):
            return cal
    return None


def resolve_members(
    models: list[str], member_cals: dict[str, Calibration], ensemble: EnsembleCalibration | None
) -> list[Member]:
    """The members, in the order of ``models``: the ensemble calibration's when there is one (a member
    calibration given beside it must be the one it was fitted with), else one per model from ``member_cals``
    (each with human score statistics). Anything that does not fit together is refused."""
    check_models(models)
    extra = sorted(set(member_cals) - set(models))
    if extra:
        raise NeumoError(f"a calibration was given for {extra[0]}, which is not among the --model")
    if ensemble is not None:
        if sorted(ensemble.models) != sorted(models):
            raise NeumoError(
                f"the ensemble calibration {ensemble.source or ''} combines {', '.join(ensemble.models)}, not "
                f"{', '.join(models)}; give the same --model set or another calibration"
            )
        by = {m.model: m for m in ensemble.members}
        for name, cal in member_cals.items():
            mine = member_from(cal)
            if (mine.detector, mine.human_score_mean, mine.human_score_std) != (
                by[name].detector,
                by[name].human_score_mean,
                by[name].human_score_std,
            ):
                raise NeumoError(
                    f"{mine.calibration} is not the {name} calibration the ensemble calibration "
                    f"{ensemble.source or ''} was fitted with ({by[name].calibration}); drop one of them"
                )
        return [by[m] for m in models]
    out = []
    for m in models:
        if m not in member_cals:
            raise NeumoError(
                f"model {m} has no calibration, so its score cannot be z-scored; give --calibration for it "
                f"(fit one with 'neumo detect calibrate --model {m}') or an ensemble calibration"
            )
        out.append(member_from(member_cals[m]))
    return out


def plan_members(models: list[str], calibrations: list) -> tuple[list[Member], EnsembleCalibration | None]:
    """The members and the ensemble calibration of ``models`` from calibration files: an ensemble one
    (at most one; default: :func:`shipped_ensemble`) and one-model ones (at most one per model; without an
    ensemble calibration, a model without one given takes its shipped one), checked by :func:`resolve_members`."""
    from neumo.detect.evaluate import default_calibration

    check_models(models)
    ensemble = None
    members: dict[str, Calibration] = {}
    for given in calibrations:
        p, raw = read_calibration(given)  # a file, or the name of a shipped calibration: one bounded read
        if is_ensemble_document(raw):
            if ensemble is not None:
                raise NeumoError("give at most one ensemble calibration")
            ensemble = ensemble_from_bytes(p, raw)
            continue
        cal = calibration_from_bytes(p, raw)
        if cal.model in members:
            raise NeumoError(f"two calibrations for {cal.model} ({members[cal.model].source}, {cal.source}); give one")
        members[cal.model] = cal
    if ensemble is None:
        ensemble = shipped_ensemble(models)
    if ensemble is None:
        for m in models:
            shipped = None if m in members else default_calibration(m)
            if shipped is not None:
                members[m] = shipped
    return resolve_members(models, members, ensemble), ensemble


def analyze_ensemble(
    texts: list[str],
    lms: list,
    members: list[Member],
    ensemble: EnsembleCalibration | None = None,
    max_tokens: int | None = None,
    batch_size: int = 8,
) -> list[EnsembleResult]:
    """Score ``texts`` with each model of ``lms`` (aligned with ``members``), z-score each model's detector
    score against its member's human reference, average; the verdict needs ``ensemble`` (else undecided)."""
    from neumo.detect.registry import compute_scores
    from neumo.detect.score import score_texts

    if [lm.name for lm in lms] != [m.model for m in members]:
        raise NeumoError("the scoring models and the ensemble members must be the same models, in order")
    per_model = []
    for lm, m in zip(lms, members):
        stats = score_texts(lm, texts, max_tokens=max_tokens, batch_size=batch_size)
        per_model.append([(compute_scores(s, [m.detector])[m.detector], s.n) for s in stats])
    info = threshold_info(ensemble) if ensemble is not None else None
    out = []
    for i in range(len(texts)):
        rows = [
            MemberScore(
                model=m.model,
                precision=getattr(lm, "precision", "fp32"),
                detector=m.detector,
                score=float(per_model[k][i][0]),
                z=float(z_score(per_model[k][i][0], m)),
                n_tokens=int(per_model[k][i][1]),
                calibration=m.calibration,
            )
            for k, (lm, m) in enumerate(zip(lms, members))
        ]
        score = float(np.mean([r.z for r in rows]))
        out.append(
            EnsembleResult(
                score=score,
                verdict=decide(score, ensemble) if ensemble is not None else "undecided",
                members=rows,
                threshold=info,
                member_calibrations=[m.calibration for m in members],
            )
        )
    return out
