"""Figure functions: each returns ``(fig, ax)`` and neither shows nor saves (Agg backend)."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def line_plot(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    bands: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
    hlines: Mapping[str, float] | None = None,
    figsize=(5.5, 3.6),
):
    """One line per series ``name -> (x, y)``; optional shaded bands ``name -> (lo, hi)``."""
    fig, ax = plt.subplots(figsize=figsize)
    for name, (x, y) in series.items():
        (line,) = ax.plot(x, y, marker="o" if len(x) <= 20 else None, ms=3, label=name)
        if bands and name in bands:
            lo, hi = bands[name]
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2)
    for name, level in (hlines or {}).items():
        ax.axhline(level, ls="--", lw=1, color="gray")
        ax.annotate(name, (ax.get_xlim()[0], level), fontsize=7, color="gray", va="bottom")
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if len(series) > 1 or hlines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, ax


def bar_plot(values: Mapping[str, float], *, ylabel: str = "", title: str = "", figsize=(5.5, 3.6)):
    fig, ax = plt.subplots(figsize=figsize)
    names = list(values)
    ax.bar(range(len(names)), [values[n] for n in names], color="#4c72b0")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig, ax


def heatmap(
    matrix,
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str = "",
    cbar_label: str = "",
    figsize=(6, 3.6),
):
    fig, ax = plt.subplots(figsize=figsize)
    im = ax.imshow(np.asarray(matrix, dtype=float), aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=7)
    step = max(1, len(col_labels) // 10)
    ax.set_xticks(range(0, len(col_labels), step), [col_labels[i] for i in range(0, len(col_labels), step)], fontsize=7)
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label=cbar_label)
    fig.tight_layout()
    return fig, ax


def spectrum_plot(values: Mapping[str, Sequence[float]], *, title: str = "", logy: bool = True, figsize=(5.5, 3.6)):
    """Sorted spectra (index vs value), one line per name."""
    fig, ax = plt.subplots(figsize=figsize)
    for name, vals in values.items():
        v = np.sort(np.abs(np.asarray(vals, dtype=float)))[::-1]
        ax.plot(np.arange(1, len(v) + 1), v, label=name)
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel="index", ylabel="value", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, ax
