"""Curves with 95% intervals over seeds: mean +- t_{0.975, n-1} * sd / sqrt(n) (Student t)."""

from __future__ import annotations

import pandas as pd

from neumo.stats import mean_ci


def summarize(df: pd.DataFrame, x: str, by: list[str], metric: str = "acc", level: float = 0.95) -> pd.DataFrame:
    """One row per (by..., x): mean, lo, hi, n over seeds of ``metric``."""
    sub = df[df["metric"] == metric]
    rows = []
    for key, g in sub.groupby([*by, x], sort=True, dropna=False):
        m, lo, hi = mean_ci(g["value"].tolist(), level)
        rows.append(
            {
                **dict(zip([*by, x], key if isinstance(key, tuple) else (key,))),
                "metric": metric,
                "mean": m,
                "lo": lo,
                "hi": hi,
                "n": int(len(g)),
            }
        )
    return pd.DataFrame(rows)
