"""Detectors by name. One-pass detectors map :class:`TokenStats` to a score (higher = more machine-like)."""

from __future__ import annotations

from typing import Callable

from neumo.detect import detectors as d
from neumo.detect.score import TokenStats
from neumo.errors import NeumoError

Detector = Callable[[TokenStats], float]

_DETECTORS: dict[str, Detector] = {
    "likelihood": d.likelihood, "logrank": d.logrank, "entropy": d.entropy, "gltr": d.gltr,
    "lrr": d.lrr, "fast_detectgpt": d.fast_detectgpt, "lastde": d.lastde, "lastde++": d.lastde_pp,
    "specdetect": d.specdetect,
}
# what `neumo detect calibrate` fits when no detector is named (and so the verdict of a model without a
# shipped calibration); a model's shipped calibration names its own (neumo.detect.evaluate.default_detector)
DEFAULT_DETECTOR = "fast_detectgpt"
TWO_MODEL = ("binoculars",)   # need an observer and a performer: see neumo.detect.binoculars


def detector_names() -> list[str]:
    """Names of the one-pass detectors, in a stable order."""
    return list(_DETECTORS)


def get_detector(name: str) -> Detector:
    if name not in _DETECTORS:
        hint = " (binoculars needs two models: neumo.detect.binoculars)" if name in TWO_MODEL else ""
        raise NeumoError(f"unknown detector {name!r}{hint}; available: {', '.join(_DETECTORS)}")
    return _DETECTORS[name]


def resolve(names: list[str] | None) -> list[str]:
    """Validate a selection; ``None`` or empty means every one-pass detector."""
    if not names:
        return detector_names()
    for n in names:
        get_detector(n)
    return list(dict.fromkeys(names))


def compute_scores(stats: TokenStats, names: list[str] | None = None) -> dict[str, float]:
    return {n: get_detector(n)(stats) for n in resolve(names)}
