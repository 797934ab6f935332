"""S-edge-of-stability: under full-batch GD the sharpness rises to 2 / eta and stays there, for every eta.

Setup (pinned): ``n_train`` digits of the seed's training split, inputs centred, MLP 64-64-64-10 ReLU,
square loss 0.5 * mean ||f(x) - onehot(y)||^2 (Cohen et al.'s), full-batch gradient descent. An eta
sweep with ``steps = time / eta`` (equal eta * t for every eta, as Cohen et al. plot it), and
``checkpoints`` evenly spaced in eta * t at which the top Hessian eigenvalue of the full-batch loss is
computed by Lanczos. The claim is judged on the *worst* eta of the sweep: the fraction of the
checkpoints of the second half of the budget at which sharpness * eta / 2 lies within
1 +- ``band``. It is not cut on the initial ratio (a run that starts near 2 / eta and stays there is a
valid edge-of-stability run); the step at which the ratio first reaches 1 - band is reported.

Nulls (each run as its own arm with the same seed; both are controls: they must not pass):

- ``small_lr``: the same network and budget with one step size so small (``small_eta``) that
  progressive sharpening levels off far below 2 / eta (gradient-flow regime);
- ``linear``: a linear model (no hidden layer) with the same sweep: its Hessian is constant
  (the input covariance), so there is no progressive sharpening to reach 2 / eta with.

The non-monotone loss is reported, not judged: the share of steps at which the loss rose and the
largest rise relative to the running minimum, per eta.
"""

from __future__ import annotations

import torch
from pydantic import Field

from neumo.config import StrictModel
from neumo.spectral.curvature import HessianOperator, lanczos
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import digits, digits_mlp, half_mse


class EdgeOfStabilityThresholds(Thresholds):
    band: float = Field(
        0.10,
        description="'within 10% of 2/eta': the band the issue's claim states "
        "(Cohen et al. 2021 show sharpness hovering just above 2/eta)",
    )
    min_in_band_fraction: float = Field(
        0.8, description="'stays': at least 4 in 5 of the late checkpoints in the band, fixed before the judged seeds"
    )
    min_converged_fraction: float = Field(
        1.0, description="competence gate: every Lanczos estimate of the sharpness converged (a principled value)"
    )


class EdgeOfStabilityConfig(StrictModel):
    hidden: list[int] = [64, 64]
    n_train: int = 500
    etas: list[float] = [0.45, 0.6, 0.75, 0.9]
    time: float = 300.0  # eta * steps, the same for every eta
    checkpoints: int = 30  # sharpness estimates per run, evenly spaced in eta * t
    small_eta: float = 0.2  # the small_lr null's step size
    lanczos_iter: int = 60
    lanczos_tol: float = 1e-3
    thresholds: EdgeOfStabilityThresholds = EdgeOfStabilityThresholds()


def sharpness_trajectory(model, batch, eta: float, steps: int, every: int, iters: int, tol: float, seed: int):
    """Full-batch GD for ``steps`` steps. Returns ``(traj, losses)``: ``traj`` is
    ``[(step, top Hessian eigenvalue, converged)]`` every ``every`` steps (and at the last step),
    ``losses`` the full-batch loss before every step and after the last."""
    opt = torch.optim.SGD(model.parameters(), lr=eta)
    traj, losses = [], []
    for step in range(steps + 1):
        if step % every == 0 or step == steps:
            res = lanczos(HessianOperator(model, half_mse, batch), k=1, tol=tol, max_iter=iters, seed=seed)
            traj.append((step, float(res.eigenvalues[0]), bool(res.converged)))
        opt.zero_grad(set_to_none=True)
        loss = half_mse(model, batch)
        losses.append(float(loss.detach()))
        if step == steps:
            break
        loss.backward()
        opt.step()
    return traj, losses


def hover_stats(traj, losses, eta: float, steps: int, band: float) -> dict[str, float]:
    """Per-eta numbers: the share of second-half checkpoints with sharpness * eta / 2 in 1 +- band,
    when the ratio first reached 1 - band (``reach_time`` in eta * t, absent if never), and the loss's non-monotonicity."""
    ratios = [(s, lam * eta / 2) for s, lam, _ in traj]
    late = [r for s, r in ratios if s >= steps / 2]
    in_band = sum(abs(r - 1) <= band for r in late) / len(late)
    reach = next((s * eta for s, r in ratios if r >= 1 - band), None)
    ups = [b > a for a, b in zip(losses[:-1], losses[1:])]
    run_min, worst = losses[0], 0.0
    for v in losses[1:]:
        worst = max(worst, v / run_min - 1)
        run_min = min(run_min, v)
    out = {
        "in_band": in_band,
        "late_ratio": sum(late) / len(late),
        "max_ratio": max(r for _, r in ratios),
        "initial_ratio": ratios[0][1],
        "reached": float(reach is not None),
        "loss_up_share": sum(ups) / len(ups),
        "loss_max_rise": worst,
        "final_loss": losses[-1],
        "converged": sum(c for *_, c in traj) / len(traj),
    }
    if reach is not None:
        out["reach_time"] = reach
    return out


@register_study
class EdgeOfStability(Study):
    id = "S-edge-of-stability"
    instrument = "spectral"
    claim = (
        "Under full-batch gradient descent with step size eta, for every eta of a sweep run for the same "
        "eta * t, the top Hessian eigenvalue rises to 2/eta and stays within 10% of it; a step size too small "
        "to reach 2/eta, or a model without progressive sharpening, does not hover there."
    )
    citation = "Cohen, Kaur, Li, Kolter & Talwalkar (2021), ICLR"
    Config = EdgeOfStabilityConfig
    presets = {"quick": {"time": 150.0, "checkpoints": 16}, "full": {}}
    nulls = {
        "small_lr": "the same network and budget (eta * t) with one small step size, small_eta",
        "linear": "a linear model (no hidden layer, constant Hessian) with the same eta sweep",
    }
    replication = (
        "the seed sets the initialisation and which n_train digits are trained on (the seeded split); "
        "gradient descent itself is full-batch and deterministic"
    )
    quick_cost_s = 25.0

    def checks(self, cfg):
        return [
            CheckSpec(
                "in_band_fraction",
                "in_band_min",
                ">=",
                "min_in_band_fraction",
                controls=("small_lr", "linear"),
                label="worst eta: share of late checkpoints with sharpness within 10% of 2/eta",
            )
        ]

    def preconditions(self, cfg):
        # the controls are judged on sharpness estimates too: theirs must have converged as well
        return [
            GateSpec(
                f"lanczos_converged{'' if arm == 'treatment' else '_' + arm}",
                "converged_min",
                ">=",
                "min_converged_fraction",
                arm=arm,
                why=f"every sharpness estimate ({arm}) converged",
            )
            for arm in ("treatment", *self.nulls)
        ]

    def measure(self, cfg: EdgeOfStabilityConfig, ctx: StudyContext) -> Measurement:
        x, y, _ = digits(ctx.seed, n=cfg.n_train, center=True)
        hidden = [] if ctx.arm == "linear" else cfg.hidden
        etas = [cfg.small_eta] if ctx.arm == "small_lr" else cfg.etas
        values, rows, series = {}, [], {}
        per_eta = []
        for eta in etas:
            model = digits_mlp(ctx.seed, hidden)
            steps = max(1, round(cfg.time / eta))
            every = max(1, steps // cfg.checkpoints)
            traj, losses = sharpness_trajectory(
                model, (x, y), eta, steps, every, cfg.lanczos_iter, cfg.lanczos_tol, ctx.seed
            )
            st = hover_stats(traj, losses, eta, steps, cfg.thresholds.band)
            per_eta.append(st)
            values.update({f"eta{eta:g}_{k}": v for k, v in st.items()})
            rows += [
                {
                    "eta": eta,
                    "step": s,
                    "time": s * eta,
                    "sharpness": lam,
                    "two_over_eta": 2 / eta,
                    "converged": c,
                    "loss": losses[s],
                }
                for s, lam, c in traj
            ]
            series[f"eta={eta:g}"] = ([s * eta for s, *_ in traj], [lam * eta / 2 for _, lam, _ in traj])
        values["in_band_min"] = min(st["in_band"] for st in per_eta)
        values["converged_min"] = min(st["converged"] for st in per_eta)
        values["loss_up_share_mean"] = sum(st["loss_up_share"] for st in per_eta) / len(per_eta)
        import pandas as pd

        ctx.run.write_table("sharpness", pd.DataFrame(rows))
        if ctx.keep_figures:
            from neumo.report.figures import line_plot

            fig, _ = line_plot(
                series,
                xlabel="eta * t",
                ylabel="sharpness * eta / 2",
                title="edge of stability (1 = 2/eta)",
                hlines={"2/eta": 1.0},
            )
            ctx.save_figure("sharpness", fig)
        return Measurement(values=values, tables={"per_eta": [{"eta": e, **st} for e, st in zip(etas, per_eta)]})

    def summarize(self, cfg, m):
        parts = [
            f"eta {e:g}: late sharpness*eta/2 {m.get(f'eta{e:g}_late_ratio', float('nan')):.2f}, "
            f"{m.get(f'eta{e:g}_in_band', float('nan')):.0%} in band, loss rose at "
            f"{m.get(f'eta{e:g}_loss_up_share', float('nan')):.0%} of steps"
            for e in cfg.etas
        ]
        return (
            "; ".join(parts) + f". small_lr ({cfg.small_eta:g}): late ratio "
            f"{m.get(f'small_lr:eta{cfg.small_eta:g}_late_ratio', float('nan')):.2f}; linear: in band "
            f"{m.get('linear:in_band_min', float('nan')):.0%} (seed means)"
        )


__all__ = ["EdgeOfStability", "EdgeOfStabilityConfig", "hover_stats", "sharpness_trajectory"]
