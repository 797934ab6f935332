"""Detectors by name. One-pass detectors map :class:`TokenStats` to a score (higher = more machine-like);
two-model detectors (``TWO_MODEL``: Binoculars) need a second scoring model with the same tokenizer (the
performer; the scoring model is the observer) and are computed by :mod:`neumo.detect.binoculars`."""

from __future__ import annotations

from typing import Callable

from neumo.detect import detectors as d
from neumo.detect.score import TokenStats
from neumo.errors import NeumoError

Detector = Callable[[TokenStats], float]

_DETECTORS: dict[str, Detector] = {
    "likelihood": d.likelihood,
    "logrank": d.logrank,
    "entropy": d.entropy,
    "gltr": d.gltr,
    "lrr": d.lrr,
    "fast_detectgpt": d.fast_detectgpt,
    "lastde": d.lastde,
    "lastde++": d.lastde_pp,
    "specdetect": d.specdetect,
}
# what `neumo detect calibrate` fits when no detector is named (and so the verdict of a model without a
# shipped calibration); a model's shipped calibration names its own (neumo.detect.evaluate.default_detector)
DEFAULT_DETECTOR = "fast_detectgpt"
TWO_MODEL = ("binoculars",)  # need an observer and a performer: see neumo.detect.binoculars
PERFORMER_HINT = (
    "binoculars needs a second model with the scoring model's tokenizer: give --performer MODEL (library: performer=)"
)


def detector_names() -> list[str]:
    """Names of the one-pass detectors, in a stable order."""
    return list(_DETECTORS)


def get_detector(name: str) -> Detector:
    if name not in _DETECTORS:
        if name in TWO_MODEL:
            raise NeumoError(
                f"{name} is not a one-pass detector (two models: neumo.detect.binoculars); {PERFORMER_HINT}"
            )
        raise NeumoError(f"unknown detector {name!r}; available: {', '.join(all_detector_names())}")
    return _DETECTORS[name]


def all_detector_names() -> list[str]:
    """One-pass detectors, then two-model ones."""
    return detector_names() + list(TWO_MODEL)


def split_detectors(names: list[str] | None) -> tuple[list[str], list[str]]:
    """A selection as (one-pass names, two-model names); ``None`` or empty: every one-pass detector, none of
    the two-model ones. Unknown names raise."""
    if not names:
        return detector_names(), []
    bad = [n for n in names if n not in _DETECTORS and n not in TWO_MODEL]
    if bad:
        raise NeumoError(f"unknown detector {bad[0]!r}; available: {', '.join(all_detector_names())}")
    names = list(dict.fromkeys(names))
    return [n for n in names if n in _DETECTORS], [n for n in names if n in TWO_MODEL]


def resolve(names: list[str] | None) -> list[str]:
    """Validate a selection; ``None`` or empty means every one-pass detector."""
    if not names:
        return detector_names()
    for n in names:
        get_detector(n)
    return list(dict.fromkeys(names))


def compute_scores(stats: TokenStats, names: list[str] | None = None) -> dict[str, float]:
    return {n: get_detector(n)(stats) for n in resolve(names)}
