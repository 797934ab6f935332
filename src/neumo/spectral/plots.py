"""Figures from the tracker's tidy table: a metric against step per module, and a modules x steps heat map.

Both return ``(fig, ax)`` and neither show nor save (see :mod:`neumo.report.figures`).
"""

from __future__ import annotations

from neumo.errors import NeumoError


def _select(df, quantity: str, metric: str):
    sel = df[(df.quantity == quantity) & (df.metric == metric)]
    if sel.empty:
        have = sorted({f"{q}/{m}" for q, m in zip(df.quantity, df.metric)})
        raise NeumoError(f"the table has no rows for {quantity}/{metric}; available: {', '.join(have[:20])}")
    return sel


def metric_vs_step(df, quantity: str, metric: str, title: str = ""):
    from neumo.report.figures import line_plot

    sel = _select(df, quantity, metric)
    series = {m: (g.step.tolist(), g.value.tolist()) for m, g in sel.sort_values("step").groupby("module")}
    return line_plot(series, xlabel="step", ylabel=metric, title=title or f"{quantity}: {metric}")


def module_heatmap(df, quantity: str, metric: str, title: str = ""):
    from neumo.report.figures import heatmap

    pivot = _select(df, quantity, metric).pivot_table(index="module", columns="step", values="value")
    return heatmap(
        pivot.values,
        row_labels=list(pivot.index),
        col_labels=[str(c) for c in pivot.columns],
        title=title or f"{quantity}: {metric}",
        cbar_label=metric,
    )


__all__ = ["metric_vs_step", "module_heatmap"]
