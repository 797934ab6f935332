"""Evaluation: AUROC, TPR at fixed FPR, bootstrap intervals; data readers; calibrated thresholds.

Labels: 1 = machine, 0 = human; scores: higher = more machine-like. A threshold is fitted on a named
reference set so that at most ``target_fpr`` of its human texts score at or above it, and is saved as
JSON with its provenance (reference name, sizes, model, detector, time) - never a constant in the code.

Uncertainty band (:func:`threshold_band`): the threshold is an order statistic of a finite human sample,
so another equally likely reference set would have given another one. The band is the percentile
interval (95%) of the thresholds fitted on ``band_boot`` resamples (with replacement) of the human
scores; a score inside it is ``undecided`` (:func:`decide`): below it ``human``, at or above its upper
end ``machine`` (so a machine verdict still needs a score at or above the threshold itself).

Several reference sets (domains, e.g. one file each): the ``max`` rule (:data:`CALIBRATION_RULES`) takes the
largest of the sets' own thresholds, so every set's in-sample FPR is at most the target; its band is the
percentile interval of that maximum over bootstrap replicates that resample each set's human scores
(:func:`max_threshold_band`). The ``pooled`` rule fits one threshold over all their human texts (which
S-detect-transfer measured to leave the most machine-like domain above the target).
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from neumo.bounded import MAX_CONFIG_BYTES, read_limited
from neumo.errors import NeumoError
from neumo.seeding import numpy_rng


def auroc(scores, labels) -> float:
    """Area under the ROC curve = P(machine score > human score) + 0.5 P(tie) (Mann-Whitney U)."""
    s, y = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        raise NeumoError("AUROC needs both human (label 0) and machine (label 1) texts")
    from scipy.stats import rankdata

    r = rankdata(s)  # average ranks handle ties
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def roc_points(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) for the rule "machine if score >= threshold", thresholds descending."""
    s, y = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    thr = np.unique(s)[::-1]
    tpr = np.array([np.mean(s[y] >= t) for t in thr])
    fpr = np.array([np.mean(s[~y] >= t) for t in thr])
    return np.r_[0.0, fpr], np.r_[0.0, tpr], np.r_[np.inf, thr]


def tpr_at_fpr(scores, labels, fpr: float) -> float:
    """Highest TPR of any threshold whose FPR is at most ``fpr``."""
    f, t, _ = roc_points(scores, labels)
    return float(t[f <= fpr + 1e-12].max())


def bootstrap_ci(
    scores, labels, metric=auroc, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of ``metric`` over resamples of texts, stratified by label."""
    s, y = np.asarray(scores, np.float64), np.asarray(labels).astype(int)
    rng = numpy_rng(seed, "bootstrap")
    i1, i0 = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    vals = []
    for _ in range(n_boot):
        idx = np.r_[rng.choice(i1, len(i1)), rng.choice(i0, len(i0))]
        vals.append(metric(s[idx], y[idx]))
    a = (1 - level) / 2
    return float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))


def summarize(scores, labels, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    lo, hi = bootstrap_ci(scores, labels, auroc, n_boot, seed=seed) if n_boot else (float("nan"),) * 2
    return {
        "auroc": auroc(scores, labels),
        "auroc_lo": lo,
        "auroc_hi": hi,
        "tpr_at_1fpr": tpr_at_fpr(scores, labels, 0.01),
        "tpr_at_5fpr": tpr_at_fpr(scores, labels, 0.05),
        "n_human": int(np.sum(np.asarray(labels) == 0)),
        "n_machine": int(np.sum(np.asarray(labels) == 1)),
    }


# ---- data -------------------------------------------------------------------------------------------

_LABELS = {
    "0": 0,
    "1": 1,
    "human": 0,
    "machine": 1,
    "ai": 1,
    "original": 0,
    "sampled": 1,
    "false": 0,
    "true": 1,
    "generated": 1,
}


def _label(v, where: str) -> int:
    key = str(v).strip().lower()
    if key not in _LABELS:
        raise NeumoError(f"{where}: label {v!r} is not one of 0/1/human/machine")
    return _LABELS[key]


def load_labelled(
    path: str | Path, limit: int | None = None, text_field: str = "text", label_field: str = "label"
) -> tuple[list[str], list[int]]:
    """Texts and labels from a Fast-DetectGPT ``{"original": [...], "sampled": [...]}`` JSON file (the first
    ``limit`` pairs), or JSONL / CSV with a text and a label column (the first ``limit`` rows)."""
    p = Path(path)
    if not p.is_file():
        raise NeumoError(f"data file {p} does not exist")
    try:
        if p.suffix == ".json":
            from neumo.detect.pairs import load_pairs  # one reader of pair files (bounded, validated)

            h, m = load_pairs(p, limit)
            return h + m, [0] * len(h) + [1] * len(m)
        if p.suffix == ".jsonl":
            rows = [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        elif p.suffix == ".csv":
            with p.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        else:
            raise NeumoError(f"{p}: unsupported format {p.suffix!r}; use .json (original/sampled), .jsonl or .csv")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NeumoError(f"{p} is not valid UTF-8 JSON/CSV: {e}") from e
    rows = rows[:limit]
    for i, r in enumerate(rows):
        if text_field not in r or label_field not in r:
            raise NeumoError(f"{p} row {i}: needs '{text_field}' and '{label_field}' fields")
    return [str(r[text_field]) for r in rows], [_label(r[label_field], f"{p} row {i}") for i, r in enumerate(rows)]


# ---- calibration ------------------------------------------------------------------------------------


class DomainThreshold(BaseModel):
    """One reference set of a calibration over several: its own threshold and its share of human texts
    at or above the calibration's threshold (at most the target under the max rule)."""

    reference: str
    threshold: float
    n_human: int
    n_machine: int
    fpr: float


class Calibration(BaseModel):
    """A fitted threshold with its provenance, plus human reference statistics for explanations."""

    detector: str
    threshold: float
    target_fpr: float
    model: str
    reference: str
    n_human: int
    n_machine: int
    fitted_at: str
    reference_auroc: float | None = None
    max_tokens: int | None = None
    human_reference: dict[str, float] = Field(default_factory=dict)
    band: tuple[float, float] | None = None  # scores in [lo, hi) are undecided (threshold_band)
    band_method: str | None = None
    precision: str | None = None  # of the scoring model that fitted it (None: fp32, older files)
    # mean and standard deviation (ddof 1) of the detector's score over the reference's human texts: the
    # human reference an ensemble z-scores against (neumo.detect.ensemble); None in older files
    human_score_mean: float | None = None
    human_score_std: float | None = None
    # how several reference sets made one threshold ("max" | "pooled", CALIBRATION_RULES); None: one set
    # (or a file older than the rule, whose several sets were pooled)
    rule: str | None = None
    # per reference set (several files): its own threshold at target_fpr, sizes and in-sample FPR at `threshold`
    domains: list[DomainThreshold] = Field(default_factory=list)
    # where it was read from (set by load_calibration; not saved, not compared)
    source: str | None = Field(None, exclude=True)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Calibration):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]


class Thresholded(Protocol):
    """What :func:`decide` reads: a :class:`Calibration` or an ensemble's (``neumo.detect.ensemble``)."""

    threshold: float
    band: tuple[float, float] | None


def decide(score: float, cal: Thresholded) -> str:
    """The verdict of ``score`` under ``cal``: ``machine`` at or above the threshold (and the band's upper
    end), ``human`` below it (and below the band), ``undecided`` inside the band [lo, hi)."""
    if cal.band is not None:
        lo, hi = cal.band
        if lo <= score < hi:
            return "undecided"
    return "machine" if score >= cal.threshold else "human"


def fit_threshold(human_scores, target_fpr: float) -> float:
    """Smallest score t such that the share of human scores >= t is at most ``target_fpr``."""
    h = np.sort(np.asarray(human_scores, np.float64))
    if not len(h):
        raise NeumoError("fitting a threshold needs human texts in the reference set")
    if not 0 < target_fpr < 1:
        raise NeumoError(f"The 'target_fpr' parameter must lie in (0, 1). Got {target_fpr!r} instead.")
    for t in np.unique(h):
        if np.mean(h >= t) <= target_fpr:
            return float(t)
    return float(np.nextafter(h[-1], np.inf))  # above every human score: FPR 0 on the reference


MAX_BAND_BOOT = 100_000


def threshold_band(
    human_scores, target_fpr: float, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval (``level``) of :func:`fit_threshold` over ``n_boot`` resamples of the human scores,
    widened to hold the threshold of the full sample (drawn with ``numpy_rng(seed, "threshold-band")``)."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or not 1 <= n_boot <= MAX_BAND_BOOT:
        raise NeumoError(f"The 'n_boot' parameter must be an integer in [1, {MAX_BAND_BOOT}]. Got {n_boot!r} instead.")
    h = np.asarray(human_scores, np.float64)
    t = fit_threshold(h, target_fpr)
    rng = numpy_rng(seed, "threshold-band")
    vals = [fit_threshold(h[rng.integers(0, len(h), len(h))], target_fpr) for _ in range(n_boot)]
    a = (1 - level) / 2
    return float(min(t, np.quantile(vals, a))), float(max(t, np.quantile(vals, 1 - a)))


CALIBRATION_RULES = ("max", "pooled")


def check_rule(rule: str) -> str:
    if rule not in CALIBRATION_RULES:
        raise NeumoError(f"rule must be one of {', '.join(CALIBRATION_RULES)}; got {rule!r}")
    return rule


def max_threshold(human_groups, target_fpr: float) -> float:
    """The max rule: the largest of :func:`fit_threshold` over the groups (reference sets) of human scores."""
    if not len(human_groups):
        raise NeumoError("the max rule needs at least one reference set")
    return max(fit_threshold(h, target_fpr) for h in human_groups)


def max_threshold_band(
    human_groups, target_fpr: float, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval (``level``) of :func:`max_threshold` over ``n_boot`` bootstrap replicates, each
    resampling every group's human scores on its own (group sizes kept; replicate 0 is the data itself),
    widened to hold the threshold of the full sample (drawn with ``numpy_rng(seed, "threshold-band", "max")``)."""
    from neumo.detect.transfer import percentile_interval, resample, thresholds

    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or not 1 <= n_boot <= MAX_BAND_BOOT:
        raise NeumoError(f"The 'n_boot' parameter must be an integer in [1, {MAX_BAND_BOOT}]. Got {n_boot!r} instead.")
    t = max_threshold(human_groups, target_fpr)
    rng = numpy_rng(seed, "threshold-band", "max")
    reps = np.max([thresholds(resample(h, n_boot, rng), target_fpr) for h in human_groups], axis=0)
    lo, hi = percentile_interval(reps, level)
    return float(min(t, lo)), float(max(t, hi))


def fit_calibration(
    scores,
    labels,
    *,
    detector: str,
    model: str,
    reference: str,
    target_fpr: float = 0.05,
    max_tokens: int | None = None,
    human_reference: dict[str, float] | None = None,
    band_boot: int = 0,
    seed: int = 0,
    precision: str | None = None,
    domains=None,
    rule: str = "max",
) -> Calibration:
    """The threshold at ``target_fpr`` on the human texts, with its uncertainty band when ``band_boot`` > 0
    (:func:`threshold_band`, 95%; ``neumo detect calibrate`` uses 1000; 0: no band, every score decides), and
    the mean and standard deviation (ddof 1) of the human scores (``human_score_mean`` / ``_std``).

    ``domains``: per text, the name of the reference set it comes from (``None``: one set). With several,
    ``rule`` decides: ``max`` (the largest of the sets' own thresholds, band :func:`max_threshold_band`) or
    ``pooled`` (one threshold over all their human texts, band :func:`threshold_band`); each set's own
    threshold, sizes and in-sample FPR are recorded in ``domains``. With one set both rules are the same."""
    check_rule(rule)
    s, y = np.asarray(scores, np.float64), np.asarray(labels).astype(int)
    h = s[y == 0]
    names = list(dict.fromkeys(domains)) if domains is not None else []
    dom = np.asarray(domains, dtype=object) if domains is not None else None
    if dom is not None and len(dom) != len(s):
        raise NeumoError(f"domains has {len(dom)} names for {len(s)} scores; give one per text")
    groups = [s[(dom == n) & (y == 0)] for n in names] if dom is not None else []
    for n, g in zip(names, groups):
        if not len(g):
            raise NeumoError(f"reference set {n} has no human texts; each needs some to fit its threshold")
    use_max = rule == "max" and len(names) > 1
    n_h = int((y == 0).sum())
    if use_max:
        threshold = max_threshold(groups, target_fpr)
        band = max_threshold_band(groups, target_fpr, band_boot, seed=seed) if band_boot else None
        what = (
            f"the max over the {len(names)} reference sets of their thresholds, each refitted on a resample of "
            f"its own human scores ({', '.join(str(len(g)) for g in groups)})"
        )
    else:
        threshold = fit_threshold(h, target_fpr)
        band = threshold_band(h, target_fpr, band_boot, seed=seed) if band_boot else None
        what = f"the threshold over {band_boot} bootstrap resamples of the {n_h} human scores"
    if use_max and band_boot:
        what = f"{what}, over {band_boot} bootstrap replicates"
    method = f"95% percentile interval of {what} (seed {seed})" if band_boot else None
    per = [
        DomainThreshold(
            reference=str(n),
            threshold=fit_threshold(g, target_fpr),
            n_human=len(g),
            n_machine=int(((dom == n) & (y == 1)).sum()),
            fpr=float(np.mean(g >= threshold)),
        )
        for n, g in zip(names, groups)
    ]
    return Calibration(
        detector=detector,
        threshold=threshold,
        target_fpr=target_fpr,
        band=band,
        band_method=method,
        precision=precision,
        rule=rule if len(names) > 1 else None,
        domains=per if len(names) > 1 else [],
        model=model,
        reference=reference,
        n_human=int((y == 0).sum()),
        n_machine=int((y == 1).sum()),
        fitted_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        reference_auroc=auroc(s, y) if (y == 1).any() and (y == 0).any() else None,
        max_tokens=max_tokens,
        human_reference=dict(human_reference or {}),
        human_score_mean=float(h.mean()) if len(h) else None,
        human_score_std=float(h.std(ddof=1)) if len(h) > 1 else None,
    )


def save_calibration(cal: Calibration, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(cal.model_dump_json(indent=2), encoding="utf-8")
    return p


SHIPPED_CALIBRATIONS = (Path(__file__).parent / "calibrations").resolve()


def shipped_calibration(model: str) -> Path | None:
    """The calibration that ships with neumo for ``model`` (``neumo/detect/calibrations/<model>.json``), if any.

    Fitted with ``neumo detect calibrate`` on a named reference set; its provenance is inside the file.
    """
    p = SHIPPED_CALIBRATIONS / f"{model}.json"
    return p if p.parent == SHIPPED_CALIBRATIONS and p.is_file() else None


def shipped_calibration_names() -> list[str]:
    """Names of the calibrations that ship with neumo (their file names without ``.json``)."""
    return sorted(p.stem for p in SHIPPED_CALIBRATIONS.glob("*.json"))


def calibration_path(name_or_path: str | Path) -> Path:
    """A calibration file: ``name_or_path`` when it is a file, else the shipped calibration of that name
    (e.g. ``gemma3-270m``, with or without ``.json``); refused, with the shipped names, when neither."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    s = str(name_or_path)
    stem = s[: -len(".json")] if s.endswith(".json") else s
    names = shipped_calibration_names()
    if stem in names and p.name == s:  # a bare name, not a path to a missing file
        return SHIPPED_CALIBRATIONS / f"{stem}.json"
    if p.exists():  # a folder, a device, a pipe: never read
        raise NeumoError(f"calibration {p} is not a regular file; give a calibration .json file")
    raise NeumoError(
        f"calibration {s} does not exist: neither a file nor a shipped calibration ({', '.join(names)}); "
        "fit one with 'neumo detect calibrate'"
    )


def default_detector(model: str) -> str:
    """The detector whose verdict neumo gives by default with ``model``: the one of its shipped calibration
    (what ``neumo serve`` loads), else ``neumo.detect.registry.DEFAULT_DETECTOR`` (what ``calibrate`` fits)."""
    from neumo.detect.registry import DEFAULT_DETECTOR

    p = shipped_calibration(model)
    return load_calibration(p).detector if p is not None else DEFAULT_DETECTOR


def read_calibration(path: str | Path) -> tuple[Path, bytes]:
    """(the file :func:`calibration_path` resolves ``path`` to, its bytes), read once and with a bound
    (``$NEUMO_MAX_CONFIG_BYTES``; shipped calibrations are a few KiB)."""
    p = calibration_path(path)
    return p, read_limited(p, "NEUMO_MAX_CONFIG_BYTES", MAX_CONFIG_BYTES, "calibration file")


def load_calibration(path: str | Path) -> Calibration:
    """A calibration from a file, or from the name of a shipped one (:func:`calibration_path`)."""
    return calibration_from_bytes(*read_calibration(path))


def calibration_from_bytes(p: Path, raw: bytes) -> Calibration:
    """The calibration in ``raw`` (the bytes of ``p``), validated."""
    try:
        cal = Calibration.model_validate_json(raw.decode("utf-8"))
    except (ValidationError, UnicodeDecodeError) as e:
        raise NeumoError(f"{p} is not a neumo calibration file ({str(e).splitlines()[0]})") from e
    if cal.band is not None and not cal.band[0] <= cal.threshold <= cal.band[1]:
        raise NeumoError(
            f"{p}: the band {list(cal.band)} does not hold the threshold {cal.threshold}; refit it "
            "with 'neumo detect calibrate'"
        )
    cal.source = f"{p.name} (shipped)" if p.resolve().parent == SHIPPED_CALIBRATIONS else str(p)
    return cal


def default_calibration(model: str) -> Calibration | None:
    """The calibration ``detect score``, ``detect explain`` and ``serve`` use for ``model`` when none is given:
    its shipped one (``None`` when it has none: the verdict is then ``undecided``)."""
    p = shipped_calibration(model)
    return load_calibration(p) if p is not None else None
