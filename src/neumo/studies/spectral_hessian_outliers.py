"""S-hessian-outliers: C - 1 outlier Hessian eigenvalues with cross-entropy, C with MSE.

Setup (pinned): digits (C = 10) in [0, 1], MLP 64-32-32-10 ReLU, SGD lr 0.1, batch 64, seed-derived
batches; after ``steps`` (mid-training: loss about a fifth of its initial value) the top-``k`` Hessian
eigenvalues of the loss on the first ``n_hessian`` training samples by Lanczos. The outliers are
counted at the largest ratio lambda_i / lambda_{i+1} among the top ``k - 1``. Known not to hold at
initialisation (no class structure yet: all ratios are below 1.2) and fading late in training once
the loss is near zero and some outliers merge with the bulk.
"""

from __future__ import annotations

import torch

from neumo.config import StrictModel
from neumo.data.digits import minibatches
from neumo.spectral.curvature import HessianOperator, lanczos
from neumo.studies.base import Study, StudyContext, Verdict, check, judge
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import LOSSES, digits, digits_mlp, sgd_steps


class HessianOutliersConfig(StrictModel):
    hidden: list[int] = [32, 32]
    steps: int = 300
    lr: float = 0.1
    batch_size: int = 64
    n_hessian: int = 600
    k: int = 16
    losses: list[str] = ["cross_entropy", "mse"]
    min_gap_ratio: float = 2.0


def outliers(lam: torch.Tensor) -> tuple[int, float]:
    """(number of outliers, their gap ratio): the index of the largest lambda_i / lambda_{i+1}."""
    ratios = lam[:-1] / lam[1:]
    i = int(torch.argmax(ratios))
    return i + 1, float(ratios[i])


@register_study
class HessianOutliers(Study):
    id = "S-hessian-outliers"
    instrument = "spectral"
    claim = ("Mid-training, the Hessian of a C-class classifier has C-1 outlier eigenvalues separated "
             "from the bulk with cross-entropy, and C with the square loss.")
    citation = "Sagun et al. (2017), arXiv:1706.04454; Papyan (2019/2020), JMLR"
    Config = HessianOutliersConfig
    presets = {"quick": {}, "full": {"steps": 600, "k": 24}}

    def run(self, cfg: HessianOutliersConfig, ctx: StudyContext) -> Verdict:
        x, y, _ = digits(ctx.seed)
        hb = (x[: cfg.n_hessian], y[: cfg.n_hessian])
        checks, measured, spectra, rows = [], {}, {}, []
        for loss in cfg.losses:
            model = digits_mlp(ctx.seed, cfg.hidden)
            sgd_steps(model, LOSSES[loss], minibatches(x, y, cfg.batch_size, ctx.seed), cfg.steps, cfg.lr)
            op = HessianOperator(model, LOSSES[loss], hb)
            res = lanczos(op, k=cfg.k, tol=1e-4, seed=ctx.seed)
            n_out, gap = outliers(res.eigenvalues)
            expected = 9 if loss == "cross_entropy" else 10
            checks += [check(f"{loss}_outlier_count_error", abs(n_out - expected), "<=", 0),
                       check(f"{loss}_gap_ratio", gap, ">=", cfg.min_gap_ratio)]
            measured.update({f"{loss}_outliers": n_out, f"{loss}_loss": op.loss(), f"{loss}_converged": res.converged,
                             f"{loss}_top_eigenvalues": [round(float(v), 4) for v in res.eigenvalues]})
            spectra[loss] = res.eigenvalues.tolist()
            rows += [{"loss": loss, "index": i + 1, "eigenvalue": float(v)} for i, v in enumerate(res.eigenvalues)]
        import pandas as pd

        ctx.run.write_table("hessian_top_eigenvalues", pd.DataFrame(rows))
        from neumo.report.figures import spectrum_plot

        fig, ax = spectrum_plot(spectra, title="top Hessian eigenvalues (digits MLP, mid-training)")
        ax.axvline(9.5, ls="--", color="gray", lw=1)
        ctx.save_figure("hessian_top_eigenvalues", fig)
        v = judge(self.id, checks, measured=measured)
        v.summary = "; ".join(f"{loss}: {v.measured[f'{loss}_outliers']} outliers (gap ratio "
                              f"{v.measured[f'{loss}_gap_ratio']:.2f}, loss {v.measured[f'{loss}_loss']:.3f})"
                              for loss in cfg.losses)
        return v
