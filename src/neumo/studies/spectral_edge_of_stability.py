"""S-edge-of-stability: under full-batch GD the sharpness rises to about 2 / eta and hovers there.

Setup (pinned): the first ``n_train`` digits, inputs centred, MLP 64-64-64-10 ReLU, square loss
0.5 * mean ||f(x) - onehot(y)||^2, full-batch gradient descent with step sizes ``etas``. Every
``every`` steps the top Hessian eigenvalue (Lanczos, ``lanczos_iter`` products) on the full batch. The
claim is judged on sharpness * eta / 2: below ``max_initial_ratio`` at step 0 (so it must rise) and, over
the last ``hover_fraction`` of the steps, a mean within [min_ratio, max_ratio]. Known not to hold when
eta is so small that training converges before the sharpness reaches 2 / eta (measured: eta = 0.3
plateaus at about 0.74 x 2 / eta once the loss nears zero), and with cross-entropy late in training,
where the sharpness eventually falls.
"""

from __future__ import annotations

import torch

from neumo.config import StrictModel
from neumo.spectral.curvature import HessianOperator, lanczos
from neumo.studies.base import Study, StudyContext, Verdict, check, judge
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import digits, digits_mlp, half_mse


class EdgeOfStabilityConfig(StrictModel):
    hidden: list[int] = [64, 64]
    n_train: int = 500
    etas: list[float] = [0.45, 0.9]
    steps: int = 400
    every: int = 10
    lanczos_iter: int = 30
    hover_fraction: float = 0.4
    max_initial_ratio: float = 0.8
    min_ratio: float = 0.85
    max_ratio: float = 1.25


def sharpness_trajectory(model, batch, eta: float, steps: int, every: int, iters: int, seed: int):
    """Full-batch GD; returns [(step, top Hessian eigenvalue)] every ``every`` steps and the final loss."""
    opt = torch.optim.SGD(model.parameters(), lr=eta)
    traj = []
    for step in range(steps + 1):
        if step % every == 0:
            res = lanczos(HessianOperator(model, half_mse, batch), k=1, tol=1e-3, max_iter=iters, seed=seed)
            traj.append((step, float(res.eigenvalues[0])))
        if step == steps:
            break
        opt.zero_grad(set_to_none=True)
        loss = half_mse(model, batch)
        loss.backward()
        opt.step()
    return traj, float(loss.detach())


@register_study
class EdgeOfStability(Study):
    id = "S-edge-of-stability"
    instrument = "spectral"
    claim = "Under full-batch gradient descent with step size eta, the top Hessian eigenvalue rises to about 2/eta and hovers there."
    citation = "Cohen, Kaur, Li, Kolter & Talwalkar (2021), ICLR"
    Config = EdgeOfStabilityConfig
    presets = {"quick": {"steps": 200}, "full": {"steps": 1000, "every": 10}}

    def run(self, cfg: EdgeOfStabilityConfig, ctx: StudyContext) -> Verdict:
        x, y, _ = digits(ctx.seed, n=cfg.n_train, center=True)
        checks, measured, series, rows = [], {}, {}, []
        for eta in cfg.etas:
            model = digits_mlp(ctx.seed, cfg.hidden)
            traj, loss = sharpness_trajectory(model, (x, y), eta, cfg.steps, cfg.every, cfg.lanczos_iter, ctx.seed)
            ratios = [(s, lam * eta / 2) for s, lam in traj]
            late = [r for s, r in ratios if s >= (1 - cfg.hover_fraction) * cfg.steps]
            mean_late = sum(late) / len(late)
            checks += [check(f"eta{eta:g}_initial_ratio", ratios[0][1], "<=", cfg.max_initial_ratio),
                       check(f"eta{eta:g}_hover_ratio_low", mean_late, ">=", cfg.min_ratio),
                       check(f"eta{eta:g}_hover_ratio_high", mean_late, "<=", cfg.max_ratio)]
            measured[f"eta{eta:g}_final_loss"] = loss
            measured[f"eta{eta:g}_max_ratio"] = max(r for _, r in ratios)
            series[f"eta={eta:g}"] = ([s for s, _ in traj], [lam for _, lam in traj])
            rows += [{"eta": eta, "step": s, "sharpness": lam, "two_over_eta": 2 / eta} for s, lam in traj]
        import pandas as pd

        from neumo.report.figures import line_plot

        ctx.run.write_table("sharpness", pd.DataFrame(rows))
        fig, _ = line_plot(series, xlabel="step", ylabel="top Hessian eigenvalue", title="edge of stability",
                           hlines={f"2/{eta:g}": 2 / eta for eta in cfg.etas})
        ctx.save_figure("sharpness", fig)
        v = judge(self.id, checks, measured=measured)
        v.summary = "; ".join(f"eta {eta:g}: sharpness*eta/2 from {v.measured[f'eta{eta:g}_initial_ratio']:.2f} "
                              f"to a late mean {v.measured[f'eta{eta:g}_hover_ratio_low']:.2f}" for eta in cfg.etas)
        return v
