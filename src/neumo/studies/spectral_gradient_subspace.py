"""S-gradient-subspace: the gradient lives in the top Hessian eigenspace, yet learning happens in the bulk.

Setup (pinned): digits in [0, 1], MLP 64-32-32-10 ReLU, cross-entropy, SGD, batch 64, at two learning
rates, each trained for the same lr x steps (as Cohen et al. compare learning rates). After the warmup,
per learning rate:

1. the fraction of the full-batch gradient (first ``n_hessian`` samples) inside the span of the top-k
   (k = C = 10) Hessian eigenvectors (Gur-Ari et al. 2018), against the same fraction in a *random*
   k-dimensional subspace (the measured chance level, inline null ``random_subspace``);
2. from that point, ``ablation_time / lr`` more steps of plain SGD, of Dom-SGD (each minibatch gradient
   projected onto the top-k eigenspace, recomputed every ``refresh`` steps on ``n_refresh`` samples), of
   Bulk-SGD (that projection removed) and of Rand-SGD (projected onto a random k-subspace redrawn at the
   same cadence: the null of Dom-SGD). Progress is the decrease of the training loss relative to SGD's;
   *efficiency* is that progress divided by the mean share of the minibatch gradient's squared norm the
   projection kept (1 for a subspace whose gradient share turns into progress as it would to first
   order). Song, Ahn & Yun (2025): Dom-SGD keeps most of the gradient and still stalls.

Every Lanczos run (the measurement and each Dom/Bulk refresh) reports convergence; the gate requires
all of them to converge. A seed changes the initialisation, the data split, the batch order, the
Lanczos start vectors and the random subspaces.
"""

from __future__ import annotations

import copy
import math

import torch
from pydantic import Field

from neumo.config import StrictModel
from neumo.data.digits import minibatches
from neumo.seeding import make_generator
from neumo.spectral.curvature import HessianOperator, gradient_fraction, lanczos
from neumo.spectral.curvature.params import flatten, unflatten
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import cross_entropy, digits, digits_mlp, sgd_steps

NULL = "random_subspace"


class GradientSubspaceThresholds(Thresholds):
    min_fraction: float = Field(
        0.5,
        description="'most of the gradient' = more than half of its squared norm "
        "in the top-k eigenspace (Gur-Ari et al. report ~0.9 and above)",
    )
    min_log10_fraction_over_random: float = Field(
        1.0,
        description="an order of magnitude (log10 ratio >= 1) above "
        "the fraction in a random k-subspace (the "
        "measured chance level)",
    )
    max_dom_progress: float = Field(
        0.2,
        description="'stalls': Dom-SGD makes at most a fifth of SGD's loss "
        "decrease (Song et al. show essentially none)",
    )
    max_dom_efficiency_over_random: float = Field(
        0.5,
        description="Dom-SGD turns its gradient share into "
        "progress at most half as well as Rand-SGD "
        "(a principled factor of two)",
    )
    min_rand_progress: float = Field(
        0.0,
        description="gate: Rand-SGD lowers the loss at all (> 0), else the "
        "efficiency ratio over it has a sign-flipping denominator",
    )
    min_bulk_progress: float = Field(
        0.7,
        description="'still learns': Bulk-SGD keeps at least 70% of SGD's loss decrease (Song et al.: close to SGD)",
    )
    min_converged: float = Field(1.0, description="every Lanczos run (measurement and refreshes) converged")


class GradientSubspaceConfig(StrictModel):
    hidden: list[int] = [32, 32]
    lrs: list[float] = Field([0.05, 0.1], min_length=1)
    warmup_time: float = Field(40.0, gt=0, description="lr x warmup steps (equal for every lr)")
    batch_size: int = 64
    k: int = 10
    n_hessian: int = 600
    lanczos_tol: float = 1e-4
    ablation_time: float = Field(40.0, gt=0, description="lr x ablation steps (equal for every lr)")
    refresh: int = 10
    tail: int = Field(
        10,
        ge=1,
        description="progress = mean full training loss over the first `tail` steps "
        "minus that over the last `tail` steps",
    )
    n_random: int = Field(32, ge=1, description="random k-subspaces averaged for the gradient-fraction null")
    n_refresh: int = 256
    refresh_tol: float = 1e-3
    max_iter: int = 150
    thresholds: GradientSubspaceThresholds = GradientSubspaceThresholds()


def random_basis(size: int, k: int, seed: int, *names) -> torch.Tensor:
    """An orthonormal basis (size, k) of a uniformly random k-dimensional subspace."""
    g = make_generator(seed, "random-subspace", *names)
    q, _ = torch.linalg.qr(torch.randn(size, k, generator=g, dtype=torch.float64))
    return q


def projected_training(model, batch_fn, start, steps, cfg, mode, data, seed, lr) -> dict[str, float]:
    """Train a copy with the gradient as is (``sgd``), on the top-k eigenspace (``dom``), without it
    (``bulk``) or on a random k-subspace (``rand``). Returns the full training loss before, over
    the first ``cfg.tail`` steps (``head``) and over the last ones (``after``): window means, so that the
    phase of the oscillation along sharp directions at the branch point does not set the progress), the
    mean share of the minibatch gradient's squared norm kept, and the
    refreshes' convergence."""
    m = copy.deepcopy(model)
    params = list(m.parameters())
    size = sum(p.numel() for p in params)
    with torch.no_grad():
        before = float(cross_entropy(m, data))
    V, shares, conv, head, tail = None, [], [], [], []
    for s in range(start, start + steps):
        if mode != "sgd" and (s - start) % cfg.refresh == 0:
            if mode == "rand":
                V = random_basis(size, cfg.k, seed, lr, s).to(params[0].dtype)
            else:
                hb = (data[0][: cfg.n_refresh], data[1][: cfg.n_refresh])
                res = lanczos(
                    HessianOperator(m, cross_entropy, hb),
                    k=cfg.k,
                    tol=cfg.refresh_tol,
                    max_iter=cfg.max_iter,
                    seed=(seed * 100003 + s) % (2**31),
                )
                V, _ = torch.linalg.qr(res.eigenvectors)  # (P, k)
                conv.append(bool(res.converged))
        g = flatten(torch.autograd.grad(cross_entropy(m, batch_fn(s)), params))
        if mode != "sgd":
            assert V is not None  # drawn at the first step
            pg = V @ (V.T @ g)
            share = float(pg @ pg / (g @ g).clamp_min(1e-30))
            g, share = (pg, share) if mode in ("dom", "rand") else (g - pg, 1.0 - share)
            shares.append(share)
        with torch.no_grad():
            for p, gp in zip(params, unflatten(g, params)):
                p.sub_(lr * gp)
            if s < start + cfg.tail:
                head.append(float(cross_entropy(m, data)))
            if s >= start + steps - cfg.tail:
                tail.append(float(cross_entropy(m, data)))
    return {
        "before": before,
        "head": sum(head) / len(head),
        "after": sum(tail) / len(tail),
        "share": sum(shares) / len(shares) if shares else 1.0,
        "refreshes": len(conv),
        "converged": sum(conv),
    }


def _q(name: str, lr: float) -> str:
    return f"{name}@lr{lr:g}"


@register_study
class GradientSubspace(Study):
    id = "S-gradient-subspace"
    instrument = "spectral"
    claim = (
        "Most of the gradient lies in the top-C Hessian eigenspace (far above its share in a random "
        "subspace of the same dimension), yet SGD restricted to that subspace stalls, converting its "
        "gradient share into progress far worse than SGD in a random subspace, while SGD with it "
        "removed (the bulk) still learns; at two learning rates."
    )
    citation = "Gur-Ari, Roberts & Dyer (2018), arXiv:1812.04754; Song, Ahn & Yun (2025), ICLR"
    Config = GradientSubspaceConfig
    presets = {"quick": {"warmup_time": 30.0, "ablation_time": 15.0}, "full": {}}
    nulls = {
        NULL: "the same measurements in a random k-dimensional subspace: the gradient's fraction in it, "
        "and Rand-SGD (minibatch gradients projected onto it, redrawn every refresh)"
    }
    replication = (
        "the seed sets the initialisation, the data split, the batch order, the Lanczos start "
        "vectors and the random subspaces"
    )
    quick_cost_s = 20.0
    threshold_history = (
        "after a first look (no threshold value changed): lrs compared at equal lr x steps; "
        "the fraction ratio judged as log10 (10x -> 1) with 32 random subspaces; progress "
        "measured between 10-step window means after the branch point's transient"
    )

    def checks(self, cfg):
        out = []
        for lr in cfg.lrs:
            out += [
                CheckSpec(
                    _q("gradient_fraction", lr),
                    _q("gradient_fraction", lr),
                    ">=",
                    "min_fraction",
                    controls=(NULL,),
                    label=f"gradient fraction in the top-k eigenspace (lr {lr:g})",
                ),
                CheckSpec(
                    _q("log10_fraction_over_random", lr),
                    _q("log10_gradient_fraction", lr),
                    ">=",
                    "min_log10_fraction_over_random",
                    null=NULL,
                    relation="difference",
                    label=f"log10(top-k gradient fraction / random k-subspace's) (lr {lr:g})",
                ),
                CheckSpec(
                    _q("dom_progress", lr),
                    _q("projected_progress", lr),
                    "<=",
                    "max_dom_progress",
                    label=f"Dom-SGD loss decrease / SGD's (lr {lr:g})",
                ),
                CheckSpec(
                    _q("dom_efficiency_over_random", lr),
                    _q("projected_efficiency", lr),
                    "<=",
                    "max_dom_efficiency_over_random",
                    null=NULL,
                    label=f"Dom-SGD progress per gradient share / Rand-SGD's (lr {lr:g})",
                ),
                CheckSpec(
                    _q("bulk_progress", lr),
                    _q("bulk_progress", lr),
                    ">=",
                    "min_bulk_progress",
                    label=f"Bulk-SGD loss decrease / SGD's (lr {lr:g})",
                ),
            ]
        return out

    def preconditions(self, cfg):
        return [
            g
            for lr in cfg.lrs
            for g in (
                GateSpec(
                    _q("lanczos_converged", lr),
                    _q("lanczos_converged", lr),
                    ">=",
                    "min_converged",
                    why="every Lanczos run (measurement and Dom/Bulk refreshes) converged",
                ),
                GateSpec(
                    _q("rand_sgd_progresses", lr),
                    _q("projected_progress", lr),
                    ">",
                    "min_rand_progress",
                    arm=NULL,
                    why="the denominator of dom_efficiency_over_random is positive",
                ),
            )
        ]

    def measure(self, cfg: GradientSubspaceConfig, ctx: StudyContext) -> Measurement:
        x, y, _ = digits(ctx.seed)
        values: dict[str, float] = {}
        null: dict[str, float] = {}
        rows = []
        for lr in cfg.lrs:
            model = digits_mlp(ctx.seed, cfg.hidden)
            batch_fn = minibatches(x, y, cfg.batch_size, ctx.seed)
            warmup, steps = round(cfg.warmup_time / lr), round(cfg.ablation_time / lr)
            sgd_steps(model, cross_entropy, batch_fn, warmup, lr)
            op = HessianOperator(model, cross_entropy, (x[: cfg.n_hessian], y[: cfg.n_hessian]))
            res = lanczos(op, k=cfg.k, tol=cfg.lanczos_tol, max_iter=cfg.max_iter, seed=ctx.seed)
            assert res.eigenvectors is not None  # return_vectors=True
            grad = op.gradient()
            runs = {
                mode: projected_training(model, batch_fn, warmup, steps, cfg, mode, (x, y), ctx.seed, lr)
                for mode in ("sgd", "dom", "bulk", "rand")
            }
            drop = {m: r["head"] - r["after"] for m, r in runs.items()}  # progress after the first window
            rel = {m: drop[m] / drop["sgd"] if drop["sgd"] != 0 else float("nan") for m in drop}
            n_runs = 1 + runs["dom"]["refreshes"] + runs["bulk"]["refreshes"]
            n_conv = int(res.converged) + runs["dom"]["converged"] + runs["bulk"]["converged"]
            frac = gradient_fraction(grad, res.eigenvectors)
            frac_rand = (
                sum(
                    gradient_fraction(grad, random_basis(op.size, cfg.k, ctx.seed, lr, "fraction", i))
                    for i in range(cfg.n_random)
                )
                / cfg.n_random
            )
            values.update(
                {
                    _q("gradient_fraction", lr): frac,
                    _q("log10_gradient_fraction", lr): math.log10(max(frac, 1e-300)),
                    _q("projected_progress", lr): rel["dom"],
                    _q("projected_efficiency", lr): rel["dom"] / max(runs["dom"]["share"], 1e-12),
                    _q("projected_share", lr): runs["dom"]["share"],
                    _q("bulk_progress", lr): rel["bulk"],
                    _q("bulk_share", lr): runs["bulk"]["share"],
                    _q("lanczos_converged", lr): n_conv / n_runs,
                    _q("lanczos_runs", lr): float(n_runs),
                    _q("lambda_max", lr): float(res.eigenvalues[0]),
                    _q("lambda_k", lr): float(res.eigenvalues[-1]),
                    _q("sgd_loss_drop", lr): drop["sgd"],
                    _q("loss_after_warmup", lr): runs["sgd"]["before"],
                    "n_params": float(op.size),
                }
            )
            null.update(
                {
                    _q("gradient_fraction", lr): frac_rand,
                    _q("log10_gradient_fraction", lr): math.log10(max(frac_rand, 1e-300)),
                    _q("projected_progress", lr): rel["rand"],
                    _q("projected_efficiency", lr): rel["rand"] / max(runs["rand"]["share"], 1e-12),
                    _q("projected_share", lr): runs["rand"]["share"],
                }
            )
            rows += [
                {
                    "lr": lr,
                    "mode": m,
                    "loss_before": r["before"],
                    "loss_head": r["head"],
                    "loss_after": r["after"],
                    "relative_progress": rel[m],
                    "gradient_share": r["share"],
                }
                for m, r in runs.items()
            ]
        if ctx.keep_figures:
            ctx.save_figure("projected_sgd", _figure(rows))
        return Measurement(values=values, nulls={NULL: null}, tables={"ablation": rows})

    def summarize(self, cfg, m):
        nan = float("nan")
        parts = []
        for lr in cfg.lrs:

            def g(q, arm=""):
                return m.get(f"{arm}:{_q(q, lr)}" if arm else _q(q, lr), nan)

            parts.append(
                f"lr {lr:g}: {g('gradient_fraction'):.1%} of the gradient in the top-{cfg.k} eigenspace "
                f"(random subspace {g('gradient_fraction', NULL):.2%}); loss decrease relative to SGD: "
                f"Dom {g('projected_progress'):.2f}, Bulk {g('bulk_progress'):.2f}, "
                f"Rand {g('projected_progress', NULL):.3f}"
            )
        return "; ".join(parts) + " (seed means)"


def _figure(rows):
    import matplotlib.pyplot as plt

    lrs = sorted({r["lr"] for r in rows})
    modes = ["sgd", "dom", "bulk", "rand"]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    w = 0.8 / len(lrs)
    for i, lr in enumerate(lrs):
        vals = [next(r["relative_progress"] for r in rows if r["lr"] == lr and r["mode"] == m) for m in modes]
        ax.bar([j + i * w for j in range(len(modes))], vals, width=w, label=f"lr {lr:g}")
    ax.set_xticks([j + w * (len(lrs) - 1) / 2 for j in range(len(modes))], ["SGD", "Dom", "Bulk", "Rand"])
    ax.set(ylabel="loss decrease / SGD's", title="SGD vs top-k (Dom), bulk and random-k projections")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


__all__ = ["GradientSubspace", "GradientSubspaceConfig", "projected_training", "random_basis"]
