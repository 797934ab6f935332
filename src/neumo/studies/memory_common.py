"""Helpers shared by the memory studies: curves from per-length results, one figure per study."""

from __future__ import annotations

from typing import Any

from neumo.memory.train import MemoryResult


def curve_rows(label: str, res: MemoryResult) -> list[dict[str, Any]]:
    return [{"model": label, "length": L, **m, "state_size": res.model.state_size(L),
             "n_params": res.model.num_parameters(), "steps": res.steps} for L, m in res.eval.items()]


def curve_figure(rows: list[dict[str, Any]], metric: str, *, title: str, xlabel: str = "test length",
                 train_max: float | None = None, chance: float | None = None):
    from neumo.report.figures import line_plot

    series: dict[str, tuple[list, list]] = {}
    for r in sorted(rows, key=lambda r: r["length"]):
        xs, ys = series.setdefault(str(r["model"]), ([], []))
        xs.append(r["length"])
        ys.append(r[metric])
    hl = {}
    if chance is not None:
        hl["chance"] = chance
    fig, ax = line_plot(series, xlabel=xlabel, ylabel=metric, title=title, hlines=hl or None)
    if train_max is not None:
        ax.axvline(train_max, ls=":", color="gray", lw=1)
    return fig
