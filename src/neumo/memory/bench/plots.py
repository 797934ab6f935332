"""Curves with their 95% bands from a :func:`neumo.memory.bench.stats.summarize` table."""

from __future__ import annotations

import pandas as pd

from neumo.report.figures import line_plot


def curve_figure(
    summary: pd.DataFrame,
    x: str,
    by: list[str],
    *,
    title: str = "",
    ylabel: str = "accuracy",
    chance: float | None = None,
    logx: bool = False,
):
    series, bands = {}, {}
    for key, g in summary.groupby(by, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        name = ", ".join(f"{k}={v}" if k != "label" else str(v) for k, v in zip(by, key))
        g = g.sort_values(x)
        series[name] = (g[x].tolist(), g["mean"].tolist())
        bands[name] = (g["lo"].tolist(), g["hi"].tolist())
    return line_plot(
        series,
        xlabel=x,
        ylabel=ylabel,
        title=title,
        bands=bands,
        logx=logx,
        hlines={"chance": chance} if chance is not None else None,
    )
