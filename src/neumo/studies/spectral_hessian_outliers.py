"""S-hessian-outliers: along training, C - 1 Hessian eigenvalues stand out of the bulk with cross-entropy, C with MSE.

Setup (pinned): digits in [0, 1], restricted to the classes ``0..C-1`` for each C of ``classes``
(5 and 10), MLP 64-32-32-C ReLU, SGD lr 0.1, batch 64, seed-derived batches, for each loss of
``losses``. At ``checkpoints`` evenly spaced steps (``steps / checkpoints``, ..., ``steps``: the whole
trajectory after initialisation) the Hessian of the loss on the first ``n_hessian`` training samples
gets

- its top ``C + k_extra`` eigenvalues by Lanczos, and
- its spectral density by stochastic Lanczos quadrature (SLQ).

The bulk edge comes from the density, not from a gap between the top eigenvalues: smooth the SLQ
measure with a Gaussian of width ``sigma_fraction`` of the spectral range and walk right from the
density's maximum while the smoothed density still holds at least ``edge_count`` eigenvalues per
kernel (``n rho(lambda) sigma sqrt(2 pi) >= edge_count``: an isolated eigenvalue's own bump peaks at
1). The outliers are the Lanczos eigenvalues above that edge. Judged, per loss, on the worse of the two
class counts: the share of checkpoints whose outlier count is exactly C - 1 (cross-entropy) or C (MSE).

Nulls (run as their own arms with the same seed):

- ``untrained`` (a control: it must not pass): the network at initialisation, where no class
  structure has formed (the pilot seed showed no separated outliers at step 0);
- ``shuffled_labels`` (reported, not a control): the same training on permuted labels. The C - 1
  outliers of cross-entropy come from the means of the logit gradients (Papyan 2019, the top level of
  his hierarchy; Fort & Ganguli 2019), which need no label-input association, so this null is expected
  to show them as well, and it did at the pilot seed. It shows what the count does *not* prove.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from neumo.config import StrictModel
from neumo.data.digits import minibatches
from neumo.nn import build_model
from neumo.spectral.curvature import HessianOperator, SpectralDensity, lanczos, slq
from neumo.spectral.nulls import shuffled_labels
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import LOSSES, digits
from neumo.train import TrainConfig, make_optimizer

EXPECTED = {"cross_entropy": -1, "mse": 0}  # outliers = C + this (Papyan 2019/2020)
SHORT = {"cross_entropy": "ce", "mse": "mse"}
WORD = {"cross_entropy": "C-1", "mse": "C"}


class HessianOutliersThresholds(Thresholds):
    min_expected_fraction: float = Field(
        2 / 3,
        description="'along the trajectory': at least two thirds of the "
        "checkpoints (leaves room for the early transient "
        "before class structure forms); fixed before the "
        "judged seeds",
    )
    min_train_acc: float = Field(
        0.9,
        description="competence gate: the network learned its classes by the last "
        "checkpoint (a principled floor for digits)",
    )
    min_converged_fraction: float = Field(
        1.0, description="competence gate: every top-eigenvalue Lanczos run converged (a principled value)"
    )


class HessianOutliersConfig(StrictModel):
    hidden: list[int] = [32, 32]
    classes: list[int] = [5, 10]
    losses: list[str] = ["cross_entropy", "mse"]
    steps: int = 1500
    checkpoints: int = 10
    lr: float = 0.1
    batch_size: int = 64
    n_hessian: int = 600
    k_extra: int = 6  # Lanczos finds C + k_extra eigenvalues, so counts above C stay visible
    lanczos_tol: float = 1e-4
    slq_probes: int = 4
    slq_steps: int = 40
    sigma_fraction: float = 0.01  # Gaussian smoothing of the SLQ measure, as a share of the spectral range
    edge_count: float = 1.0  # the bulk holds at least this many eigenvalues per smoothing kernel
    thresholds: HessianOutliersThresholds = HessianOutliersThresholds()


def bulk_edge(
    density: SpectralDensity,
    top: float,
    size: int,
    sigma_fraction: float = 0.01,
    edge_count: float = 1.0,
    grid_points: int = 4000,
) -> float:
    """The right edge of the bulk of an SLQ density: from the smoothed density's maximum, the last grid
    point where it still counts ``edge_count`` eigenvalues per kernel (``size * rho * sigma * sqrt(2 pi)``).
    ``top`` is the largest eigenvalue (the upper end of the spectral range)."""
    lo = float(min(float(t.min()) for t in density.nodes))
    hi = max(float(top), float(max(float(t.max()) for t in density.nodes)))
    sigma = sigma_fraction * max(hi - lo, 1e-12)
    grid = torch.linspace(lo - 3 * sigma, hi + 3 * sigma, grid_points, dtype=torch.float64)
    per_kernel = density.density(grid, sigma) * size * sigma * math.sqrt(2 * math.pi)
    j = int(torch.argmax(per_kernel))
    while j + 1 < grid_points and per_kernel[j + 1] >= edge_count:
        j += 1
    return float(grid[j])


def count_outliers(eigenvalues: torch.Tensor, edge: float) -> int:
    return int((eigenvalues > edge).sum())


def _data(seed: int, n_classes: int, shuffle: bool):
    x, y, _ = digits(seed)
    keep = y < n_classes
    x, y = x[keep], y[keep]
    return x, (shuffled_labels(y, seed) if shuffle else y)


def outlier_trajectory(cfg: HessianOutliersConfig, seed: int, loss: str, n_classes: int, arm: str):
    """Rows (one per checkpoint: step, loss, outlier count, bulk edge, top eigenvalues, converged) and the
    final training accuracy. The ``untrained`` arm measures the initial network only."""
    x, y = _data(seed, n_classes, shuffle=arm == "shuffled_labels")
    fn = LOSSES[loss]
    model = build_model("mlp", seed=seed, in_dim=64, out_dim=n_classes, hidden=cfg.hidden)
    opt = make_optimizer(model.parameters(), TrainConfig(optimizer="sgd", lr=cfg.lr))
    batches = minibatches(x, y, cfg.batch_size, seed)
    hb = (x[: cfg.n_hessian], y[: cfg.n_hessian])
    every = max(1, cfg.steps // cfg.checkpoints)
    marks = [0] if arm == "untrained" else [every * (i + 1) for i in range(cfg.checkpoints)]
    rows, done = [], 0
    for mark in marks:
        for step in range(done, mark):
            opt.zero_grad(set_to_none=True)
            fn(model, batches(step)).backward()
            opt.step()
        done = mark
        op = HessianOperator(model, fn, hb)
        res = lanczos(op, k=min(n_classes + cfg.k_extra, op.size), tol=cfg.lanczos_tol, seed=seed)
        dens = slq(op, n_probes=cfg.slq_probes, steps=cfg.slq_steps, seed=seed)
        edge = bulk_edge(dens, float(res.eigenvalues[0]), op.size, cfg.sigma_fraction, cfg.edge_count)
        n_out = count_outliers(res.eigenvalues, edge)
        rows.append(
            {
                "loss": loss,
                "classes": n_classes,
                "step": mark,
                "train_loss": op.loss(),
                "outliers": n_out,
                "expected": n_classes + EXPECTED[loss],
                "capped": n_out == len(res.eigenvalues),
                "bulk_edge": edge,
                "converged": bool(res.converged),
                "top": [round(float(v), 4) for v in res.eigenvalues],
            }
        )
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    return rows, acc


@register_study
class HessianOutliers(Study):
    id = "S-hessian-outliers"
    instrument = "spectral"
    claim = (
        "Along training, the Hessian of a C-class classifier (C = 5 and 10) has exactly C-1 eigenvalues above "
        "the edge of its bulk with cross-entropy, and C with the square loss, at most checkpoints; an untrained "
        "network does not."
    )
    citation = "Sagun et al. (2017), arXiv:1706.04454; Papyan (2019), ICML; Papyan (2020), JMLR"
    Config = HessianOutliersConfig
    presets = {
        "quick": {"steps": 600, "checkpoints": 4, "n_hessian": 400, "slq_probes": 3, "slq_steps": 30},
        "full": {},
    }
    nulls = {
        "untrained": "the same network at initialisation (no training)",
        "shuffled_labels": "the same training on permuted labels (reported: expected to show the "
        "label-free logit-mean outliers too)",
    }
    replication = (
        "the seed sets the initialisation, the train split, the minibatch order and (null) the label permutation"
    )
    quick_cost_s = 40.0

    def checks(self, cfg):
        return [
            CheckSpec(
                f"{SHORT[loss]}_expected_count_fraction",
                f"{SHORT[loss]}_frac_min",
                ">=",
                "min_expected_fraction",
                controls=("untrained",),
                label=f"{loss}: worst C of the share of checkpoints with {WORD[loss]} outliers",
            )
            for loss in cfg.losses
        ]

    def preconditions(self, cfg):
        return [
            GateSpec("train_acc", "train_acc_min", ">=", "min_train_acc", why="the network learned its classes"),
            GateSpec(
                "lanczos_converged",
                "converged_min",
                ">=",
                "min_converged_fraction",
                why="every top-eigenvalue estimate converged",
            ),
        ]

    def measure(self, cfg: HessianOutliersConfig, ctx: StudyContext) -> Measurement:
        values: dict[str, float] = {}
        rows_all, accs, conv = [], [], []
        for loss in cfg.losses:
            fracs = []
            for c in cfg.classes:
                rows, acc = outlier_trajectory(cfg, ctx.seed, loss, c, ctx.arm)
                frac = sum(r["outliers"] == r["expected"] for r in rows) / len(rows)
                key = f"{SHORT[loss]}_C{c}"
                values.update(
                    {
                        f"{key}_frac": frac,
                        f"{key}_train_acc": acc,
                        f"{key}_mean_outliers": sum(r["outliers"] for r in rows) / len(rows),
                        f"{key}_last_outliers": float(rows[-1]["outliers"]),
                    }
                )
                fracs.append(frac)
                accs.append(acc)
                conv += [r["converged"] for r in rows]
                rows_all += rows
            values[f"{SHORT[loss]}_frac_min"] = min(fracs)
        values["train_acc_min"] = min(accs)
        values["converged_min"] = sum(conv) / len(conv)
        import pandas as pd

        ctx.run.write_table("outliers", pd.DataFrame([{k: v for k, v in r.items() if k != "top"} for r in rows_all]))
        if ctx.keep_figures:
            ctx.save_figure("outlier_counts", _figure(rows_all))
        table = [{k: v for k, v in r.items() if k != "top"} for r in rows_all]
        return Measurement(values=values, tables={"checkpoints": table})

    def summarize(self, cfg, m):
        parts = []
        for loss in cfg.losses:
            s = SHORT[loss]
            parts.append(
                f"{loss}: "
                + ", ".join(
                    f"C={c} {m.get(f'{s}_C{c}_frac', float('nan')):.0%} of checkpoints at {WORD[loss]} "
                    f"(mean count {m.get(f'{s}_C{c}_mean_outliers', float('nan')):.1f}; shuffled labels "
                    f"{m.get(f'shuffled_labels:{s}_C{c}_frac', float('nan')):.0%}, untrained "
                    f"{m.get(f'untrained:{s}_C{c}_frac', float('nan')):.0%})"
                    for c in cfg.classes
                )
            )
        return "; ".join(parts) + " (seed means)"


def _figure(rows):
    from neumo.report.figures import line_plot

    series = {}
    for r in rows:
        xs, ys = series.setdefault(f"{r['loss']} C={r['classes']}", ([], []))
        xs.append(r["step"])
        ys.append(r["outliers"] - r["expected"])
    fig, _ = line_plot(
        series,
        xlabel="step",
        ylabel="outliers - expected",
        title="Hessian outliers above the SLQ bulk edge",
        hlines={"expected": 0.0},
    )
    return fig


__all__ = ["HessianOutliers", "HessianOutliersConfig", "bulk_edge", "count_outliers", "outlier_trajectory"]
