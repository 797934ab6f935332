"""Helpers shared by the memory studies: curves from per-length results, one figure per study, and the
length-extrapolation pieces (a variant trained or untrained, the constant null, per-variant values)."""

from __future__ import annotations

from typing import Any

import torch

from neumo.memory.tasks import IGNORE, make_task, task_rng
from neumo.memory.train import MemoryResult, MemoryRunConfig, train_on_task


def curve_rows(label: str, res: MemoryResult) -> list[dict[str, Any]]:
    return [
        {
            "model": label,
            "length": L,
            **m,
            "state_size": res.model.state_size(L),
            "n_params": res.model.num_parameters(),
            "steps": res.steps,
        }
        for L, m in res.eval.items()
    ]


def curve_figure(
    rows: list[dict[str, Any]],
    metric: str,
    *,
    title: str,
    xlabel: str = "test length",
    train_max: float | None = None,
    chance: float | None = None,
):
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


def train_variant(rc: MemoryRunConfig, untrained: bool, progress: bool = False) -> MemoryResult:
    """Train (or, for the untrained null, only build and evaluate) one variant."""
    if untrained:
        rc = rc.model_copy(update={"train": rc.train.model_copy(update={"steps": 0})})
    return train_on_task(rc, progress=progress)


def constant_accuracy(rc: MemoryRunConfig, lengths: list[int]) -> dict[int, float]:
    """Whole-string accuracy of always predicting the majority final label of a training batch, on the
    same test strings as :func:`train_on_task` evaluates (the ``constant`` null)."""
    assert rc.train_lengths is not None, "a study's run names its training lengths"
    task = make_task(rc.task, **rc.task_knobs)
    tb = task.sample(rc.train.batch_size * 4, task_rng(rc.seed, "train", "majority"), max(rc.train_lengths))
    final = _final_targets(tb.targets)
    majority = int(final.mode().values)
    out = {}
    for L in lengths:
        b = task.sample(rc.eval_size, task_rng(rc.seed, "test", L), L)
        out[int(L)] = float((_final_targets(b.targets) == majority).double().mean())
    return out


def _final_targets(targets):
    mask = targets != IGNORE
    last = mask.shape[1] - 1 - mask.flip(1).int().argmax(1)
    return targets[torch.arange(len(targets)), last]


def variant_values(name: str, res_eval: dict[int, float], L: int, far: int) -> dict[str, float]:
    a, b = float(res_eval[L]), float(res_eval[far])
    return {f"{name}_acc_at_L": a, f"{name}_acc_at_far": b, f"{name}_gap": a - b}
