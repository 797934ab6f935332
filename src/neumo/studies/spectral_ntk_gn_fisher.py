"""S-ntk-gn-fisher: the NTK, the Gauss-Newton matrix and the empirical Fisher share their dominant directions.

Setup (pinned): digits in [0, 1], MLP 64-32-32-10 ReLU, cross-entropy, SGD (lr 0.1, batch 64, seed-derived
batches) for ``steps`` steps. On the first ``n_points`` training samples, with J the (N*C, P) output
Jacobian and p_i the softmax of sample i, three parameter-space operators, each written as M^T M:

- NTK: J^T J (the parameter-space side of the NTK Gram J J^T: same non-zero spectrum, eigenvectors J^T u);
- Gauss-Newton: J^T H J, H = blockdiag(diag(p_i) - p_i p_i^T) the output Hessian of cross-entropy
  (M = H^1/2 J, ``neumo.spectral.curvature.GaussNewtonOperator`` is the matvec form of the same matrix);
- empirical Fisher: (1/N) G^T G, G the per-sample gradients (``EmpiricalFisherOperator.per_sample_gradients``).

With the square loss H is a multiple of the identity and GN = NTK exactly (an identity, a unit test);
with cross-entropy they differ, and the Fisher depends on the labels through the residuals p_i - e_{y_i}.
Judged: ``subspace_overlap`` (||Q_A^T Q_B||_F^2 / k: 1 = the same span) of the top-``k`` eigenspaces of each
pair on the trained network, k = C - 1 = 9 (the number of cross-entropy Gauss-Newton outliers, Papyan 2019;
fixed before looking). Reported: the same at initialisation and at k = 20.

Nulls (inline):

- ``random_subspace`` (a control: it must not pass): the overlap of the first operator's top-k eigenspace
  with a Haar-random k-dimensional subspace (expected k / P, about 0.003);
- ``random_sandwich`` (reported, not a control): J^T H' J with H' a random positive semi-definite C x C block
  per sample (Wishart, A A^T / C). What any sandwich of the same J shares with the NTK: if it overlaps as
  much as the true Gauss-Newton, the sharing comes from J's spectrum, not from the loss's curvature.

A seed changes the initialisation, the train split (so which samples the operators see), the batch order
and the random subspaces and sandwiches.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field

from neumo.config import StrictModel
from neumo.data.digits import minibatches
from neumo.seeding import make_generator
from neumo.spectral.curvature import EmpiricalFisherOperator
from neumo.spectral.nulls import random_orthonormal
from neumo.spectral.subspace import subspace_overlap, top_right_singular_vectors
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import cross_entropy, digits, digits_mlp, sgd_steps

PAIRS = (("ntk", "gn"), ("ntk", "fisher"), ("gn", "fisher"))
WORDS = {"ntk": "NTK", "gn": "Gauss-Newton", "fisher": "empirical Fisher"}


class NTKGNFisherThresholds(Thresholds):
    min_overlap: float = Field(
        0.5,
        description="'share their dominant directions': more than half of the top-k "
        "subspace in common (a random k-subspace shares k/P ~ 0.003); "
        "a principled majority, fixed before looking",
    )
    min_train_acc: float = Field(
        0.9, description="competence gate: the network learned its classes (a principled floor for digits)"
    )


class NTKGNFisherConfig(StrictModel):
    hidden: list[int] = [32, 32]
    steps: int = 1500
    lr: float = 0.1
    batch_size: int = 64
    n_points: int = 256
    k: int = 9
    k_report: int = 20
    thresholds: NTKGNFisherThresholds = NTKGNFisherThresholds()


def output_jacobian(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(N, C, P) float64: d f_c(x_i) / d theta over all trainable parameters, in ``named_parameters`` order."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    theta = {n: p.detach() for n, p in named}
    jac = torch.func.jacrev(lambda th: torch.func.functional_call(model, th, (x,)))(theta)
    return torch.cat([jac[n].reshape(x.shape[0], jac[n].shape[1], -1) for n, _ in named], 2).double()


def psd_sqrt(H: torch.Tensor) -> torch.Tensor:
    """Symmetric square roots of a batch of PSD matrices (..., C, C) (negative rounding clipped)."""
    ev, Q = torch.linalg.eigh(H)
    return Q @ torch.diag_embed(ev.clamp(min=0).sqrt()) @ Q.transpose(-1, -2)


def curvature_factors(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Factors M (rows, P) with operator = M^T M (up to a positive scale): ``ntk`` J, ``gn`` H^1/2 J,
    ``fisher`` the per-sample gradients, ``sandwich`` H'^1/2 J with random Wishart blocks H'."""
    J = output_jacobian(model, x)  # (N, C, P)
    n, c, _ = J.shape
    with torch.no_grad():
        p = F.softmax(model(x).double(), 1)  # (N, C)
    H = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]  # (N, C, C) cross-entropy output Hessian
    A = torch.randn(n, c, c, generator=make_generator(seed, "random-sandwich"), dtype=torch.float64)
    fisher = EmpiricalFisherOperator(model, x, y, "cross_entropy").per_sample_gradients().double()
    return {
        "ntk": J.reshape(n * c, -1),
        "gn": (psd_sqrt(H) @ J).reshape(n * c, -1),
        "fisher": fisher,
        "sandwich": (psd_sqrt(A @ A.transpose(1, 2) / c) @ J).reshape(n * c, -1),
    }


def top_spaces(factors: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """Each factor's top-k parameter-space eigenvectors (P, k), descending (slice ``[:, :j]`` for j < k)."""
    return {name: top_right_singular_vectors(M, k)[1] for name, M in factors.items()}


def overlaps(spaces: dict[str, torch.Tensor], k: int, seed: int) -> tuple[dict[str, float], dict, dict]:
    """(pair overlaps, random-subspace null, random-sandwich null) of the top-k eigenspaces."""
    tops = {name: V[:, :k] for name, V in spaces.items()}
    P = tops["ntk"].shape[0]
    vals = {f"{a}_{b}": subspace_overlap(tops[a], tops[b]) for a, b in PAIRS}
    rand = {
        f"{a}_{b}": subspace_overlap(tops[a], random_orthonormal(P, k, seed + 7919 * i))
        for i, (a, b) in enumerate(PAIRS)
    }
    sandwich = {
        "ntk_gn": subspace_overlap(tops["ntk"], tops["sandwich"]),
        "gn_sandwich": subspace_overlap(tops["gn"], tops["sandwich"]),
    }
    return vals, rand, sandwich


@register_study
class NTKGNFisher(Study):
    id = "S-ntk-gn-fisher"
    instrument = "spectral"
    claim = (
        "On a cross-entropy MLP trained on digits, the top-(C-1) parameter-space eigenspaces of the NTK (J^T J), "
        "the Gauss-Newton matrix (J^T H J) and the empirical Fisher overlap pairwise by more than half, while "
        "a random subspace of the same dimension overlaps by about k/P."
    )
    citation = (
        "Neural Matthew Effect essay; Martens (2020), JMLR ('New insights and perspectives on the natural "
        "gradient method'); Papyan (2019), ICML; Kunstner, Hennig & Balles (2019), NeurIPS"
    )
    Config = NTKGNFisherConfig
    presets = {"quick": {"steps": 600, "n_points": 128}, "full": {}}
    nulls = {
        "random_subspace": "the first operator's top-k eigenspace against a Haar-random k-dimensional subspace",
        "random_sandwich": "J^T H' J with random Wishart output blocks H' (reported: what any sandwich of the "
        "same Jacobian shares with the NTK)",
    }
    replication = (
        "the seed sets the initialisation, the train split (the samples the operators see), the batch "
        "order and the random subspaces and sandwiches"
    )
    quick_cost_s = 11.0

    def checks(self, cfg):
        return [
            CheckSpec(
                f"overlap_{a}_{b}",
                f"{a}_{b}",
                ">=",
                "min_overlap",
                controls=("random_subspace",),
                label=f"top-{cfg.k} overlap of {WORDS[a]} and {WORDS[b]} (trained)",
            )
            for a, b in PAIRS
        ]

    def preconditions(self, cfg):
        return [GateSpec("train_acc", "train_acc", ">=", "min_train_acc", why="the network learned its classes")]

    def measure(self, cfg: NTKGNFisherConfig, ctx: StudyContext) -> Measurement:
        x_all, y_all, data = digits(ctx.seed)
        x, y = x_all[: cfg.n_points], y_all[: cfg.n_points]
        model = digits_mlp(ctx.seed, cfg.hidden)
        init, _, _ = overlaps(top_spaces(curvature_factors(model, x, y, ctx.seed), cfg.k), cfg.k, ctx.seed)
        sgd_steps(model, cross_entropy, minibatches(x_all, y_all, cfg.batch_size, ctx.seed), cfg.steps, cfg.lr)
        spaces = top_spaces(curvature_factors(model, x, y, ctx.seed), max(cfg.k, cfg.k_report))
        vals, rand, sandwich = overlaps(spaces, cfg.k, ctx.seed)
        wide, _, _ = overlaps(spaces, cfg.k_report, ctx.seed)
        with torch.no_grad():
            train_acc = float((model(x_all).argmax(1) == y_all).float().mean())
            test_acc = float((model(data.x_test).argmax(1) == data.y_test).float().mean())
        P = spaces["ntk"].shape[0]
        values = {
            **vals,
            **{f"init_{q}": v for q, v in init.items()},
            **{f"k{cfg.k_report}_{q}": v for q, v in wide.items()},
            "train_acc": train_acc,
            "test_acc": test_acc,
            "k_over_P": cfg.k / P,
            "n_params": float(P),
        }
        nulls = {"random_subspace": rand, "random_sandwich": sandwich}
        if ctx.keep_figures:
            ctx.save_figure("overlaps", _figure(init, vals, rand, cfg.k))
        return Measurement(values=values, nulls=nulls)

    def summarize(self, cfg, m):
        def g(key):
            return m.get(key, math.nan)

        return (
            f"top-{cfg.k} overlaps, trained: NTK-GN {g('ntk_gn'):.2f}, NTK-Fisher {g('ntk_fisher'):.2f}, "
            f"GN-Fisher {g('gn_fisher'):.2f} (at init {g('init_ntk_gn'):.2f}, {g('init_ntk_fisher'):.2f}, "
            f"{g('init_gn_fisher'):.2f}); random subspace {g('random_subspace:ntk_gn'):.4f} (k/P "
            f"{g('k_over_P'):.4f}); NTK vs a random sandwich of J {g('random_sandwich:ntk_gn'):.2f} (seed means)"
        )


def _figure(init, trained, rand, k):
    from neumo.report.figures import bar_plot

    vals = {f"{a}-{b} init": init[f"{a}_{b}"] for a, b in PAIRS}
    vals.update({f"{a}-{b} trained": trained[f"{a}_{b}"] for a, b in PAIRS})
    vals["random"] = rand["ntk_gn"]
    fig, _ = bar_plot(vals, ylabel=f"top-{k} subspace overlap", title="NTK / Gauss-Newton / Fisher")
    fig.autofmt_xdate(rotation=45)
    return fig


__all__ = [
    "NTKGNFisher",
    "NTKGNFisherConfig",
    "curvature_factors",
    "output_jacobian",
    "overlaps",
    "psd_sqrt",
    "top_spaces",
]
