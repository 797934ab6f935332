"""S-gradient-norms: the nuclear norm of a real layer gradient stays within a constant of its spectral norm as
width grows; for a random matrix of the same shape the ratio grows with width.

The essay's muP remark: when a gradient's spectral mass is concentrated, ||grad_W L||_* = Theta(||grad_W L||_2),
so a steepest-descent step under the spectral norm (muP / Muon-style) and one under the nuclear norm move the
layer by comparable amounts at every width.

Setup (pinned): digits in [0, 1]; MLP 64-n-n-10 ReLU for each width n of ``widths`` (standard PyTorch
initialisation), cross-entropy, Adam lr 1e-3, batch 64, ``steps`` steps. The gradient is the FULL-batch
gradient of the training loss (all training samples, so its rank is not capped by a minibatch's size) with
respect to the hidden n x n weight ``net.2.weight``, at initialisation and after training. Per seed and
point, the log-log slope over widths of

- the nuclear ratio ||G||_* / ||G||_2 (:func:`neumo.ranks.nuclear_rank`), and
- the Frobenius ratio ||G||_F / ||G||_2 (the square root of the stable rank).

Reported, not judged: the init gradient with permuted labels (``*_init_shuffled``): the mean hidden
activation alone concentrates a full-batch gradient, so a bounded ratio does not need learned structure.

Null (inline): ``random_matrix``, an i.i.d. Gaussian matrix of G's shape and Frobenius norm
(:func:`neumo.spectral.nulls.gaussian_like`). Random-matrix theory fixes its exponents: for an n x n
Gaussian matrix ||.||_2 ~ 2 sqrt(n) sigma, ||.||_F ~ n sigma and ||.||_* ~ (8 / 3 pi) n^(3/2) sigma
(quarter-circle law), so the nuclear ratio grows like n (slope 1) and the Frobenius ratio like sqrt(n)
(slope 1/2); the unit tests pin both.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from neumo.config import StrictModel
from neumo.data.digits import minibatches
from neumo.ranks import nuclear_rank, stable_rank
from neumo.seeding import derive_seed
from neumo.spectral.nulls import gaussian_like, shuffled_labels
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import cross_entropy, digits, digits_mlp
from neumo.train import Trainer, TrainConfig, make_optimizer

NULL = "random_matrix"
POINTS = ("init", "trained")


class GradientNormsThresholds(Thresholds):
    max_nuclear_slope: float = Field(
        0.5,
        description="'bounded in width': the nuclear ratio's log-log slope is at "
        "most half the random matrix's exponent (1, the quarter-circle law)",
    )
    max_frobenius_slope: float = Field(
        0.25, description="the Frobenius ratio's slope at most half the random matrix's exponent (1/2); the same factor"
    )
    min_train_acc: float = Field(
        0.95,
        description="competence gate: the network at every width fitted its training "
        "set (the trained gradients are those of a network that learned)",
    )


class GradientNormsConfig(StrictModel):
    widths: list[int] = [32, 64, 128, 256, 512]
    layer: str = "net.2"
    steps: int = Field(1000, ge=1)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(64, ge=1)
    thresholds: GradientNormsThresholds = GradientNormsThresholds()


def loglog_slope(widths, values) -> float:
    """Least-squares slope of log(values) against log(widths)."""
    return float(np.polyfit(np.log(np.asarray(widths, dtype=float)), np.log(np.asarray(values, dtype=float)), 1)[0])


def norm_ratios(g: torch.Tensor) -> dict[str, float]:
    """||G||_* / ||G||_2 and ||G||_F / ||G||_2 of a matrix."""
    s = torch.linalg.svdvals(g.double())
    return {"nuclear": nuclear_rank(s), "frobenius": stable_rank(s) ** 0.5}


def full_batch_gradient(model, layer: str, x, y) -> torch.Tensor:
    weight = model.get_submodule(layer).weight
    (g,) = torch.autograd.grad(F.cross_entropy(model(x), y), weight)
    return g.detach()


def _width(cfg: GradientNormsConfig, seed: int, width: int, x, y):
    """Ratios of the real gradient and of its Gaussian null at init and after training, and the train accuracy."""
    model = digits_mlp(derive_seed(seed, "width", width), [width, width])
    real, null = {}, {}
    for point in POINTS:
        if point == "trained":
            opt = make_optimizer(model.parameters(), TrainConfig(optimizer="adam", lr=cfg.lr))
            Trainer(model, opt, cross_entropy, minibatches(x, y, cfg.batch_size, seed), cfg.steps).fit()
        g = full_batch_gradient(model, cfg.layer, x, y)
        for k, v in norm_ratios(g).items():
            real[f"{k}_{point}"] = v
        if point == "init":  # reported: the same gradient with permuted labels (no label-input association)
            for k, v in norm_ratios(full_batch_gradient(model, cfg.layer, x, shuffled_labels(y, seed))).items():
                real[f"{k}_init_shuffled"] = v
        for k, v in norm_ratios(gaussian_like(g, derive_seed(seed, "null", width, point))).items():
            null[f"{k}_{point}"] = v
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    return real, null, acc


@register_study
class GradientNorms(Study):
    id = "S-gradient-norms"
    instrument = "spectral"
    claim = (
        "The full-batch gradient of a digits MLP's hidden n x n layer has ||G||_* / ||G||_2 (and ||G||_F / "
        "||G||_2) growing with width n at most half as fast, in log-log slope, as a random matrix of the same "
        "shape and norm (slopes 1 and 1/2), at initialisation and after training, over n = 32..512."
    )
    citation = (
        "The essay's muP remark; Yang & Hu (2021), ICML (muP); Bernstein & Newhouse (2024), arXiv:2409.20325 "
        "(steepest descent under the spectral norm)"
    )
    Config = GradientNormsConfig
    presets = {"quick": {"steps": 600}, "full": {}}
    nulls = {NULL: "an i.i.d. Gaussian matrix of the gradient's shape and Frobenius norm"}
    replication = "the seed sets every width's initialisation, the digits split, the batch order and the null draws"
    quick_cost_s = 14.0
    threshold_history = (
        "no threshold changed; the quick preset's training went from 300 to 600 steps after the "
        "first quick run failed the train-accuracy gate (0.925 at width 32), before any check "
        "was judged"
    )

    def checks(self, cfg):
        out = []
        for point in POINTS:
            for kind, thr, word in (
                ("nuclear", "max_nuclear_slope", "‖G‖_*/‖G‖_2"),
                ("frobenius", "max_frobenius_slope", "‖G‖_F/‖G‖_2"),
            ):
                out.append(
                    CheckSpec(
                        f"{kind}_slope_{point}",
                        f"{kind}_slope_{point}",
                        "<=",
                        thr,
                        controls=(NULL,),
                        label=f"log-log slope of {word} vs width, {point}",
                    )
                )
        return out

    def preconditions(self, cfg):
        return [
            GateSpec(
                "train_acc",
                "train_acc_min",
                ">=",
                "min_train_acc",
                why="the network fitted its training set at every width",
            )
        ]

    def measure(self, cfg: GradientNormsConfig, ctx: StudyContext) -> Measurement:
        x, y, _ = digits(ctx.seed)
        rows, accs = [], []
        for w in cfg.widths:
            real, null, acc = _width(cfg, ctx.seed, w, x, y)
            accs.append(acc)
            rows.append(
                {
                    "width": w,
                    **{k: round(v, 4) for k, v in real.items()},
                    **{f"null_{k}": round(v, 4) for k, v in null.items()},
                    "train_acc": round(acc, 4),
                }
            )
        values: dict[str, float] = {"train_acc_min": min(accs)}
        nulls: dict[str, float] = {}
        for point in POINTS:
            for kind in ("nuclear", "frobenius"):
                key = f"{kind}_{point}"
                values[f"{kind}_slope_{point}"] = loglog_slope(cfg.widths, [r[key] for r in rows])
                nulls[f"{kind}_slope_{point}"] = loglog_slope(cfg.widths, [r[f"null_{key}"] for r in rows])
                values[f"{key}_at_max_width"] = rows[-1][key]
                nulls[f"{key}_at_max_width"] = rows[-1][f"null_{key}"]
        for kind in ("nuclear", "frobenius"):
            values[f"{kind}_slope_init_shuffled"] = loglog_slope(cfg.widths, [r[f"{kind}_init_shuffled"] for r in rows])
        if ctx.keep_figures:
            ctx.save_figure("ratios_vs_width", _figure(rows))
        return Measurement(values=values, nulls={NULL: nulls}, tables={"per_width": rows})

    def summarize(self, cfg, m):
        g = lambda k: m.get(k, float("nan"))  # noqa: E731
        return (
            f"log-log slope of ‖G‖_*/‖G‖_2 vs width: init {g('nuclear_slope_init'):.2f}, trained "
            f"{g('nuclear_slope_trained'):.2f} (random matrix {g(NULL + ':nuclear_slope_init'):.2f}); of "
            f"‖G‖_F/‖G‖_2: init {g('frobenius_slope_init'):.2f}, trained {g('frobenius_slope_trained'):.2f} "
            f"(random {g(NULL + ':frobenius_slope_init'):.2f}); nuclear slope at init with permuted labels "
            f"{g('nuclear_slope_init_shuffled'):.2f}; at width {cfg.widths[-1]} the nuclear ratio is "
            f"{g('nuclear_trained_at_max_width'):.1f} trained vs {g(NULL + ':nuclear_trained_at_max_width'):.0f} "
            f"random (seed means)"
        )


def _figure(rows):
    import matplotlib.pyplot as plt

    widths = [r["width"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for key, style in (
        ("nuclear_init", "o-"),
        ("nuclear_trained", "s-"),
        ("null_nuclear_trained", "x--"),
        ("frobenius_trained", "^-"),
        ("null_frobenius_trained", "+--"),
    ):
        ax.loglog(widths, [r[key] for r in rows], style, label=key.replace("null_", "random "))
    ax.set_xlabel("width n")
    ax.set_ylabel("norm ratio")
    ax.set_title("hidden-layer gradient: norm ratios vs width")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


__all__ = ["GradientNorms", "GradientNormsConfig", "full_batch_gradient", "loglog_slope", "norm_ratios"]
