"""S-factorised-orthogonality: does orthogonality control keep the factors of W = A S B well conditioned?

Setup (pinned, float64): digits in [0, 1] (seeded 80/20 split); a two-layer network x -> FactorizedLinear(64,
64, rank 64, core) -> ReLU -> Linear(64, 10), cross-entropy, full-batch SGD at one learning rate ``lr`` for
``steps`` steps. The factorised layer is W = A S B with A: (64, 64), S: (64, 64), B: (64, 64), initialised
with A and Bᵀ orthonormal and S = I (``FactorizedLinear.reset_parameters_``). The rank is full, so no arm is
capacity-limited and the core lets every arm represent any W: orthogonality of A and B constrains the
parametrisation, not the function. Arms (all inline, from the same initialisation):

- ``penalty`` (the treatment): loss + ``penalty_weight`` * (||AᵀA - I||² + ||B Bᵀ - I||²)
  (``orthogonality_penalty``);
- ``plain``: the loss alone (the null);
- ``retraction``: the loss alone, and after every step ``retract("qr")`` (A, Bᵀ <- their Q factors, the R
  factors absorbed into S, so the function is unchanged). Its factors are orthonormal after every step by
  construction (a unit test in tests/spectral/test_lowrank.py), so only the distance one step takes them
  off the manifold (the condition number just before each retraction) is measured;
- ``full``: the same network with an ``nn.Linear`` holding W_0 = A_0 S_0 B_0, trained by SGD at 3 * lr
  (at initialisation the product moves by -3 lr G under gradient descent on A, S, B, since A and B are
  orthogonal and S = I).

Measured at ``checkpoints`` evenly spaced steps: the condition number σ_max/σ_min of AᵀA and of B Bᵀ (the
worse of the two; 1 at initialisation); at the end: the training loss, and the drift of the product from
full-matrix gradient descent, ||W_arm - W_full||_F / ||W_full - W_0||_F.

Under gradient flow without the penalty, AᵀA - S Sᵀ and SᵀS - B Bᵀ are conserved (balancedness; Arora,
Cohen & Hazan 2018; Du, Hu & Lee 2018), so from a balanced start cond(AᵀA) = cond(S)²: plain training's
conditioning follows the spread of the learned spectrum.

A seed changes the split and both layers' initialisations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from neumo.config import StrictModel
from neumo.seeding import make_generator
from neumo.spectral.factorized import FactorizedLinear
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import digits

ARMS = ("penalty", "plain", "retraction", "full")


class FactorisedThresholds(Thresholds):
    max_cond_ratio: float = Field(
        0.5,
        description="'keeps the factors well conditioned' = the penalty's worst "
        "condition number along training is at most half plain "
        "training's (the 'half' factor of F-mlp-digits)",
    )
    min_plain_cond: float = Field(
        2.0, description="'plain training's condition number grows' = it at least doubles from 1 at initialisation"
    )
    max_full_loss: float = Field(
        0.5,
        description="competence gate: full-matrix gradient descent learned digits "
        "(training loss below 0.5 nats, ~90% accuracy)",
    )


class FactorisedConfig(StrictModel):
    width: int = Field(64, ge=2)
    steps: int = Field(1500, ge=1)
    lr: float = Field(0.03, gt=0)
    penalty_weight: float = Field(1.0, gt=0)
    checkpoints: int = Field(10, ge=1)
    thresholds: FactorisedThresholds = FactorisedThresholds()


def _network(seed: int, width: int):
    fact = FactorizedLinear(64, width, width, core=True, seed=make_generator(seed, "factorized"), dtype=torch.float64)
    head = nn.Linear(width, 10, dtype=torch.float64)
    g = make_generator(seed, "head")
    bound = width**-0.5
    with torch.no_grad():
        head.weight.copy_(torch.rand(10, width, generator=g, dtype=torch.float64) * 2 * bound - bound)
        head.bias.copy_(torch.rand(10, generator=g, dtype=torch.float64) * 2 * bound - bound)
    return fact, head


def factor_condition(fact: FactorizedLinear) -> float:
    """The worse of cond(AᵀA) and cond(B Bᵀ) (σ_max / σ_min); inf when a factor is singular or not finite."""
    worst = 1.0
    with torch.no_grad():
        for gram in (fact.A.T @ fact.A, fact.B @ fact.B.T):
            if not torch.isfinite(gram).all():
                return math.inf
            s = torch.linalg.svdvals(gram)
            worst = max(worst, float(s.max() / s.min()) if s.min() > 0 else math.inf)
    return worst


def _train(arm: str, cfg: FactorisedConfig, seed: int, x, y):
    """Returns (final loss, final W, [(step, condition)], the largest pre-retraction condition)."""
    fact, head = _network(seed, cfg.width)
    layer: nn.Module = fact
    if arm == "full":
        layer = nn.Linear(64, cfg.width, dtype=torch.float64)
        with torch.no_grad():
            layer.weight.copy_(fact.weight)
            layer.bias.copy_(fact.bias)
    opt = torch.optim.SGD([*layer.parameters(), *head.parameters()], lr=3 * cfg.lr if arm == "full" else cfg.lr)
    every = max(1, cfg.steps // cfg.checkpoints)
    conds, before = [], 1.0
    for step in range(1, cfg.steps + 1):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(head(torch.relu(layer(x))), y)
        if arm == "penalty":
            loss = loss + cfg.penalty_weight * fact.orthogonality_penalty()
        loss.backward()
        opt.step()
        if arm == "retraction":
            if step % every == 0 or step == cfg.steps:
                before = max(before, factor_condition(fact))
            fact.retract("qr")
        if arm != "full" and (step % every == 0 or step == cfg.steps):
            conds.append((step, factor_condition(fact)))
    with torch.no_grad():
        final = float(F.cross_entropy(head(torch.relu(layer(x))), y))
        w_now: torch.Tensor = layer.weight if isinstance(layer, nn.Linear) else fact.weight
        w = w_now.detach().clone()
    return (final if math.isfinite(final) else math.inf), w, conds, before


@register_study
class FactorisedOrthogonality(Study):
    id = "S-factorised-orthogonality"
    instrument = "spectral"
    claim = (
        "In a factorised layer W = A S B trained by gradient descent, an orthogonality penalty keeps the "
        "factors well conditioned (its worst condition number of AᵀA, B Bᵀ along training is at most half "
        "plain training's), while plain training's condition number grows (at least doubles)."
    )
    citation = (
        "the first essay's low-rank argument; balancedness of factorised gradient flow: Arora, Cohen & "
        "Hazan (2018), Du, Hu & Lee (2018); Stiefel retractions: Wen & Yin (2013)"
    )
    Config = FactorisedConfig
    presets = {"quick": {"steps": 500, "checkpoints": 5}, "full": {}}
    nulls = {
        "plain": "the same factorised layer trained on the loss alone (inline; the null)",
        "retraction": "the loss alone with a QR retraction after every step (inline; reported: orthonormal "
        "by construction)",
        "full": "full-matrix gradient descent on W from the same W_0 at 3x the rate (inline; the reference "
        "for drift and loss)",
    }
    replication = "the seed sets the digits split and both layers' initialisations; training is full-batch"
    quick_cost_s = 17.0

    def checks(self, cfg):
        return [
            CheckSpec(
                "cond_over_plain",
                "max_cond",
                "<=",
                "max_cond_ratio",
                null="plain",
                label="worst condition number of AᵀA, B Bᵀ along training / plain training's",
            ),
            CheckSpec(
                "plain_cond_grows",
                "plain_max_cond",
                ">=",
                "min_plain_cond",
                label="plain training's worst condition number (1 at initialisation)",
            ),
        ]

    def preconditions(self, cfg):
        return [
            GateSpec(
                "full_final_loss",
                "full_final_loss",
                "<=",
                "max_full_loss",
                why="full-matrix gradient descent learned digits",
            )
        ]

    def measure(self, cfg: FactorisedConfig, ctx: StudyContext) -> Measurement:
        x, y, _ = digits(ctx.seed)
        x = x.double()
        runs = {arm: _train(arm, cfg, ctx.seed, x, y) for arm in ARMS}
        w0 = _network(ctx.seed, cfg.width)[0].weight.detach()
        w_full = runs["full"][1]
        moved = float((w_full - w0).norm())
        per: dict[str, dict[str, float]] = {}
        rows = []
        for arm, (final, w, conds, before) in runs.items():
            per[arm] = {
                "final_loss": final,
                "drift_from_full": float((w - w_full).norm()) / moved,
                "moved": float((w - w0).norm()),
            }
            if conds:
                per[arm]["max_cond"] = max(c for _, c in conds)
                per[arm]["final_cond"] = conds[-1][1]
                rows += [{"arm": arm, "step": s, "cond": c} for s, c in conds]
            if arm == "retraction":
                per[arm]["max_cond_before_retraction"] = before
        values = {
            **per["penalty"],
            "plain_max_cond": per["plain"]["max_cond"],
            "full_final_loss": per["full"]["final_loss"],
        }
        if ctx.keep_figures:
            ctx.save_figure("factor_condition", _figure(rows))
        return Measurement(values=values, nulls={a: per[a] for a in ARMS if a != "penalty"}, tables={"condition": rows})

    def summarize(self, cfg, m):
        g = lambda k: m.get(k, float("nan"))  # noqa: E731
        return (
            f"worst factor condition number along training: plain {g('plain:max_cond'):.2f}, penalty "
            f"{g('max_cond'):.3f}, retraction 1 (before each retraction {g('retraction:max_cond_before_retraction'):.4f}); "
            f"drift from full-matrix GD: plain {g('plain:drift_from_full'):.2f}, penalty {g('drift_from_full'):.2f}, "
            f"retraction {g('retraction:drift_from_full'):.2f}; final loss: full {g('full:final_loss'):.3f}, plain "
            f"{g('plain:final_loss'):.3f}, penalty {g('final_loss'):.3f}, retraction "
            f"{g('retraction:final_loss'):.3f} (seed means)"
        )


def _figure(rows):
    from neumo.report.figures import line_plot

    series = {}
    for arm in ("plain", "penalty", "retraction"):
        pts = [(r["step"], r["cond"]) for r in rows if r["arm"] == arm]
        series[arm] = ([p[0] for p in pts], [p[1] for p in pts])
    fig, _ = line_plot(
        series, xlabel="step", ylabel="worst cond(AᵀA), cond(B Bᵀ)", title="factor conditioning", logy=True
    )
    return fig


__all__ = ["FactorisedConfig", "FactorisedOrthogonality", "factor_condition"]
