"""How a calibrated threshold transfers: thresholds fitted on one set of human scores, false-positive and
true-positive rates measured on others, and bootstrap intervals that refit the threshold.

A threshold is :func:`neumo.detect.evaluate.fit_threshold`'s (the smallest score t with at most
``target_fpr`` of the reference humans at or above it); :func:`thresholds` computes it for many resamples at
once (rows of a matrix) and equals it row by row, ties included (tested). A *cell* (calibrated on A, tested
on B) is the FPR on B's held-out human scores and the TPR on B's machine scores of the threshold fitted on
A's calibration human scores. Pure numpy; used by S-detect-transfer.
"""

from __future__ import annotations

import numpy as np


def allowed_count(n: int, target_fpr: float) -> int:
    """The largest count c of human scores at or above the threshold with ``c / n <= target_fpr``."""
    c = int(np.floor(target_fpr * n))
    while c > 0 and c / n > target_fpr:
        c -= 1
    while (c + 1) / n <= target_fpr:
        c += 1
    return c


def thresholds(human, target_fpr: float) -> np.ndarray:
    """:func:`~neumo.detect.evaluate.fit_threshold` of each row of ``human`` (shape ``(..., n)``)."""
    s = np.sort(np.asarray(human, np.float64), axis=-1)
    n = s.shape[-1]
    if n == 0:
        raise ValueError("a threshold needs at least one human score")
    above_all = np.nextafter(s[..., -1], np.inf)
    c = allowed_count(n, target_fpr)
    if c == 0:
        return above_all
    u = s[..., n - c]  # the c-th largest: exactly c at or above it unless it ties the one below
    if c == n:
        return s[..., 0]
    tied = s[..., n - c - 1] == u
    nxt = np.where(s > u[..., None], s, np.inf).min(axis=-1)
    nxt = np.where(np.isinf(nxt), above_all, nxt)
    return np.where(tied, nxt, u)


def rate_at(threshold, scores) -> np.ndarray:
    """Share of ``scores`` (``(..., n)``) at or above ``threshold`` (``(...)``), row by row."""
    s = np.asarray(scores, np.float64)
    return (s >= np.asarray(threshold, np.float64)[..., None]).mean(axis=-1)


def resample(values, n_boot: int, rng) -> np.ndarray:
    """``(n_boot, n)`` bootstrap resamples of ``values`` (with replacement); row 0 is ``values`` itself."""
    v = np.asarray(values, np.float64)
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    idx[0] = np.arange(len(v))
    return v[idx]


def percentile_interval(reps, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates (row 0, the unresampled value, included)."""
    a = (1 - level) / 2
    r = np.asarray(reps, np.float64)
    return float(np.quantile(r, a)), float(np.quantile(r, 1 - a))


__all__ = ["allowed_count", "percentile_interval", "rate_at", "resample", "thresholds"]
