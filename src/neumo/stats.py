"""Statistics for few points, shared by every layer: Student-t intervals over seeds and a permutation
test for a rank correlation, and (partial) rank correlations (bootstrap intervals of AUROC-like statistics: ``neumo.detect.evaluate``).

These are the only ways a study turns repeated measurements into an interval, so they live here once.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def _finite(values) -> np.ndarray:
    v = np.asarray([float(x) for x in values], dtype=float)
    return v[np.isfinite(v)]


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi): mean +- t_{(1+level)/2, n-1} * sd / sqrt(n); NaNs dropped.

    With one value the interval collapses to the mean (curves in ``neumo.memory.bench`` plot it so);
    :func:`t_interval` is the strict form that refuses to give an interval from one point.
    """
    v = _finite(values)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if v.size == 1:
        return m, m, m
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return m, m - half, m + half


def t_interval(values, level: float = 0.95) -> tuple[float, float | None, float | None]:
    """(mean, lo, hi) with ``lo = hi = None`` when fewer than two finite values exist (no interval)."""
    v = _finite(values)
    if v.size < 2:
        return (float(v.mean()) if v.size else float("nan")), None, None
    return mean_ci(v, level)


def spearman(x, y) -> float:
    """Spearman's rho (Pearson of the ranks, ties averaged); NaN when either side is constant."""
    rx, ry = stats.rankdata(np.asarray(x, dtype=float)), stats.rankdata(np.asarray(y, dtype=float))
    if rx.shape != ry.shape:
        raise ValueError("a rank correlation needs two equally long series")
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def partial_spearman(x, y, z) -> float:
    """Spearman correlation of ``x`` and ``y`` with ``z`` partialled out: Pearson of the rank residuals after
    a linear fit on the ranks of ``z``; NaN when a residual is constant (nothing left to correlate)."""
    rx, ry, rz = (stats.rankdata(np.asarray(v, dtype=float)) for v in (x, y, z))
    A = np.column_stack([np.ones_like(rz), rz])
    ex = rx - A @ np.linalg.lstsq(A, rx, rcond=None)[0]
    ey = ry - A @ np.linalg.lstsq(A, ry, rcond=None)[0]
    den = float(np.sqrt((ex @ ex) * (ey @ ey)))
    return float(ex @ ey / den) if den > 1e-9 * len(rx) else float("nan")


def spearman_permutation(x, y, n_perm: int = 5000, seed: int = 0) -> tuple[float, float]:
    """Spearman's rho of (x, y) and its two-sided permutation p-value ((1 + #|rho_perm| >= |rho|) /
    (1 + n_perm)), which stays valid for a handful of points where the t approximation does not."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.size < 3:
        raise ValueError("a rank correlation needs two equally long series of at least 3 points")
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rho = float(np.corrcoef(rx, ry)[0, 1])
    rng = np.random.default_rng(seed)
    perms = np.array([np.corrcoef(rx, rng.permutation(ry))[0, 1] for _ in range(int(n_perm))])
    p = (1 + int(np.sum(np.abs(perms) >= abs(rho) - 1e-12))) / (1 + int(n_perm))
    return rho, float(p)


__all__ = ["mean_ci", "partial_spearman", "spearman", "spearman_permutation", "t_interval"]
