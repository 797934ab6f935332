"""Curves with 95% intervals over seeds: mean +- t_{0.975, n-1} * sd / sqrt(n) (Student t)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats


def mean_ci(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi) of ``values``; with one value the interval collapses to the mean."""
    v = np.asarray([x for x in values if not (isinstance(x, float) and math.isnan(x))], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if v.size == 1:
        return m, m, m
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return m, m - half, m + half


def summarize(df: pd.DataFrame, x: str, by: list[str], metric: str = "acc", level: float = 0.95) -> pd.DataFrame:
    """One row per (by..., x): mean, lo, hi, n over seeds of ``metric``."""
    sub = df[df["metric"] == metric]
    rows = []
    for key, g in sub.groupby([*by, x], sort=True, dropna=False):
        m, lo, hi = mean_ci(g["value"].tolist(), level)
        rows.append({**dict(zip([*by, x], key if isinstance(key, tuple) else (key,))),
                     "metric": metric, "mean": m, "lo": lo, "hi": hi, "n": int(len(g))})
    return pd.DataFrame(rows)
