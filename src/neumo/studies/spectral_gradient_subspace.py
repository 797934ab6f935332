"""S-gradient-subspace: the gradient lives in the top Hessian eigenspace, yet learning happens in the bulk.

Setup (pinned): digits in [0, 1], MLP 64-32-32-10 ReLU, cross-entropy, SGD lr 0.1, batch 64. After
``warmup`` steps: (1) the fraction of the full-batch gradient (first ``n_hessian`` samples) inside the
span of the top-k (k = C = 10) Hessian eigenvectors, against the chance level k / P (Gur-Ari et al.);
(2) from that point, ``ablation_steps`` more steps of plain SGD, of Dom-SGD (minibatch gradient
projected onto the top-k eigenspace, recomputed every ``refresh`` steps on ``n_refresh`` samples) and
of Bulk-SGD (the projection removed); the loss decrease of each on the training set (Song, Ahn & Yun).
Known not to hold at initialisation: the fraction is near chance before class structure forms.
"""

from __future__ import annotations

import copy

import torch

from neumo.config import StrictModel
from neumo.data.digits import minibatches
from neumo.spectral.curvature import HessianOperator, gradient_fraction, lanczos
from neumo.spectral.curvature.params import flatten, unflatten
from neumo.studies.base import Study, StudyContext, Verdict, check, judge
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import cross_entropy, digits, digits_mlp, sgd_steps


class GradientSubspaceConfig(StrictModel):
    hidden: list[int] = [32, 32]
    warmup: int = 300
    lr: float = 0.1
    batch_size: int = 64
    k: int = 10
    n_hessian: int = 600
    ablation_steps: int = 150
    refresh: int = 10
    n_refresh: int = 256
    min_fraction: float = 0.6
    max_chance: float = 0.01
    max_dom_progress: float = 0.2    # Dom-SGD loss decrease / SGD loss decrease
    min_bulk_progress: float = 0.7   # Bulk-SGD loss decrease / SGD loss decrease


def projected_training(model, batch_fn, start, cfg, mode, data) -> list[float]:
    """Train a copy with the gradient as is (``sgd``), on the top-k eigenspace (``dom``) or without it
    (``bulk``); returns the full training loss before and after."""
    m = copy.deepcopy(model)
    params = list(m.parameters())
    with torch.no_grad():
        before = float(cross_entropy(m, data))
    V = None
    for s in range(start, start + cfg.ablation_steps):
        if mode != "sgd" and (s - start) % cfg.refresh == 0:
            hb = (data[0][: cfg.n_refresh], data[1][: cfg.n_refresh])
            V = lanczos(HessianOperator(m, cross_entropy, hb), k=cfg.k, tol=1e-3, max_iter=4 * cfg.k,
                        seed=s).eigenvectors                                   # (P, k)
        g = flatten(torch.autograd.grad(cross_entropy(m, batch_fn(s)), params))
        if mode == "dom":
            g = V @ (V.T @ g)
        elif mode == "bulk":
            g = g - V @ (V.T @ g)
        with torch.no_grad():
            for p, gp in zip(params, unflatten(g, params)):
                p.sub_(cfg.lr * gp)
    with torch.no_grad():
        return [before, float(cross_entropy(m, data))]


@register_study
class GradientSubspace(Study):
    id = "S-gradient-subspace"
    instrument = "spectral"
    claim = ("Most of the gradient lies in the top-C Hessian eigenspace (far above chance k/P), yet SGD "
             "restricted to that subspace stalls while SGD with it removed (the bulk) still learns.")
    citation = "Gur-Ari, Roberts & Dyer (2018), arXiv:1812.04754; Song, Ahn & Yun (2025), ICLR"
    Config = GradientSubspaceConfig
    presets = {"quick": {}, "full": {"ablation_steps": 400, "warmup": 400}}

    def run(self, cfg: GradientSubspaceConfig, ctx: StudyContext) -> Verdict:
        x, y, _ = digits(ctx.seed)
        model = digits_mlp(ctx.seed, cfg.hidden)
        batch_fn = minibatches(x, y, cfg.batch_size, ctx.seed)
        sgd_steps(model, cross_entropy, batch_fn, cfg.warmup, cfg.lr)
        op = HessianOperator(model, cross_entropy, (x[: cfg.n_hessian], y[: cfg.n_hessian]))
        res = lanczos(op, k=cfg.k, tol=1e-4, seed=ctx.seed)
        frac, chance = gradient_fraction(op.gradient(), res.eigenvectors), cfg.k / op.size
        losses = {mode: projected_training(model, batch_fn, cfg.warmup, cfg, mode, (x, y))
                  for mode in ("sgd", "dom", "bulk")}
        drop = {m: v[0] - v[1] for m, v in losses.items()}
        dom, bulk = drop["dom"] / drop["sgd"], drop["bulk"] / drop["sgd"]
        self._figure(ctx, losses)
        import pandas as pd

        ctx.run.write_table("ablation", pd.DataFrame([{"mode": m, "loss_before": v[0], "loss_after": v[1]}
                                                      for m, v in losses.items()]))
        return judge(self.id, [check("gradient_fraction_topk", frac, ">=", cfg.min_fraction),
                               check("chance_fraction", chance, "<=", cfg.max_chance),
                               check("dom_sgd_relative_progress", dom, "<=", cfg.max_dom_progress),
                               check("bulk_sgd_relative_progress", bulk, ">=", cfg.min_bulk_progress)],
                     summary=(f"{frac:.1%} of the gradient lies in the top-{cfg.k} eigenspace (chance {chance:.2%}); "
                              f"over {cfg.ablation_steps} steps the loss fell {drop['sgd']:.3f} with SGD, "
                              f"{drop['dom']:.3f} with Dom-SGD, {drop['bulk']:.3f} with Bulk-SGD"),
                     measured={"losses": losses, "lanczos_converged": res.converged, "n_params": op.size})

    @staticmethod
    def _figure(ctx, losses):
        from neumo.report.figures import bar_plot

        fig, _ = bar_plot({m: v[0] - v[1] for m, v in losses.items()}, ylabel="training-loss decrease",
                          title="SGD vs top-k (Dom) vs bulk projections")
        ctx.save_figure("projected_sgd", fig)
