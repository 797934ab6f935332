"""S-zero-cost-proxies: does a score computed at initialisation rank the final test accuracy of a population
of small digits MLPs?

Population (pinned, the same at every seed): ``n_configs`` configurations drawn once from a fixed generator
(``make_generator(0, "zc-population")``): width in {8, 16, 32, 64, 128}, depth (hidden layers) in {1, 2, 3},
activation in {relu, tanh}, SGD learning rate log-uniform in [10^-2.5, 10^-0.3], weight decay in {0, 1e-4,
1e-3, 1e-2}. Each is trained for ``steps`` steps of SGD (batch 64, seed-derived batches, cross-entropy) on
the seed's digits split and scored by its test accuracy.

Proxies at initialisation (``neumo.spectral.proxies``; the batch is the first 32 training samples, the NTK
uses the first 8): ``synflow``, ``grad_norm``, ``naswot`` (ReLU configurations only: it is defined on ReLU
activation codes), ``jacob_cov``, the NTK's effective rank (``ntk_erank``) and log condition number
(``ntk_logcond``), the mean stable rank of the initial weight matrices (``stable_rank``) and the parameter
count (``n_params``, the baseline White et al. 2022 found hard to beat). Per seed: Spearman's rho of each
proxy with the test accuracy (and its permutation p-value), and rho after partialling out log learning rate
(which no proxy at initialisation can see).

Judged: synflow, the best proxy of Abdelfattah et al. (2021) on NAS benchmarks, chosen before the judged
seeds. Null (inline, a control): a random score (i.i.d. uniform per configuration, seed-derived).

A seed retrains the whole population: it changes every initialisation, the data split, the batch order and
the random score; the configurations stay the same.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from neumo.config import StrictModel
from neumo.data.digits import minibatches
from neumo.nn import build_model
from neumo.ranks import matrix_stable_rank
from neumo.seeding import make_generator, numpy_rng
from neumo.spectral.proxies import grad_norm, jacob_cov, naswot, ntk_summary, synflow
from neumo.stats import partial_spearman, spearman_permutation
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import cross_entropy, digits

PROXIES = ("synflow", "grad_norm", "naswot", "jacob_cov", "ntk_erank", "ntk_logcond", "stable_rank", "n_params")


class ZeroCostThresholds(Thresholds):
    min_rho: float = Field(
        0.3,
        description="'ranks the final accuracy': Spearman rho >= 0.3, the lower end of "
        "the correlations Abdelfattah et al. (2021) call useful; fixed "
        "before the judged seeds",
    )
    min_best_acc: float = Field(
        0.9, description="competence gate: the population's best configuration learned digits (>= 90% test accuracy)"
    )
    min_median_acc: float = Field(
        0.5,
        description="competence gate: most configurations learned well beyond "
        "chance (0.1), so the ranking is of learning, not noise",
    )


class ZeroCostConfig(StrictModel):
    n_configs: int = 48
    steps: int = 500
    batch_size: int = 64
    proxy_batch: int = 32
    ntk_batch: int = 8
    n_perm: int = 2000
    thresholds: ZeroCostThresholds = ZeroCostThresholds()


def population(n: int) -> list[dict]:
    """The pinned configuration population (the first ``n`` draws of a fixed generator)."""
    rng = numpy_rng(0, "zc-population")
    out = []
    for _ in range(int(n)):
        out.append(
            {
                "width": int(rng.choice([8, 16, 32, 64, 128])),
                "depth": int(rng.integers(1, 4)),
                "activation": str(rng.choice(["relu", "tanh"])),
                "lr": float(10 ** rng.uniform(-2.5, -0.3)),
                "weight_decay": float(rng.choice([0.0, 1e-4, 1e-3, 1e-2])),
            }
        )
    return out


def init_proxies(model: torch.nn.Module, batch, ntk_inputs: torch.Tensor, relu: bool) -> dict[str, float]:
    """Every proxy of the study at the model's current (initial) weights."""
    x, _ = batch
    ntk = ntk_summary(model, ntk_inputs)
    mats = [m.weight.detach() for m in model.modules() if isinstance(m, torch.nn.Linear)]
    return {
        "synflow": math.log(max(synflow(model, (x.shape[1],)).score, 1e-300)),
        "grad_norm": grad_norm(model, cross_entropy, batch).norm,
        "naswot": naswot(model, x) if relu else math.nan,
        "jacob_cov": jacob_cov(model, x),
        "ntk_erank": ntk.effective_rank,
        "ntk_logcond": math.log(ntk.condition_number) if math.isfinite(ntk.condition_number) else math.nan,
        "stable_rank": float(np.mean([matrix_stable_rank(w) for w in mats])),
        "n_params": float(sum(p.numel() for p in model.parameters())),
    }


def run_population(cfg: ZeroCostConfig, seed: int) -> list[dict]:
    """One row per configuration: its settings, its proxies at initialisation and its final test accuracy."""
    x, y, data = digits(seed)
    batch = (x[: cfg.proxy_batch], y[: cfg.proxy_batch])
    rows = []
    for i, c in enumerate(population(cfg.n_configs)):
        model = build_model(
            "mlp",
            seed=seed * 1000 + i,
            in_dim=64,
            out_dim=10,
            hidden=[c["width"]] * c["depth"],
            activation=c["activation"],
        )
        prox = init_proxies(model, batch, x[: cfg.ntk_batch], c["activation"] == "relu")
        opt = torch.optim.SGD(model.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
        batches = minibatches(x, y, cfg.batch_size, seed)
        for step in range(cfg.steps):
            xb, yb = batches(step)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
        with torch.no_grad():
            acc = float((model(data.x_test).argmax(1) == data.y_test).float().mean())
        rows.append({"config": i, **c, **prox, "test_acc": acc})
    return rows


def rank_scores(rows: list[dict], scores: dict[str, list[float]], n_perm: int, seed: int) -> dict[str, float]:
    """rho, permutation p and rho | log lr of each score with the test accuracy (over its finite entries)."""
    acc = np.array([r["test_acc"] for r in rows])
    loglr = np.log([r["lr"] for r in rows])
    out = {}
    for name, raw in scores.items():
        sc = np.asarray(raw, dtype=float)
        ok = np.isfinite(sc)
        if ok.sum() < 5 or np.ptp(sc[ok]) == 0:
            out.update({f"rho_{name}": math.nan, f"p_{name}": math.nan, f"partial_rho_{name}": math.nan})
            continue
        rho, p = spearman_permutation(sc[ok], acc[ok], n_perm=n_perm, seed=seed)
        out.update(
            {f"rho_{name}": rho, f"p_{name}": p, f"partial_rho_{name}": partial_spearman(sc[ok], acc[ok], loglr[ok])}
        )
    return out


@register_study
class ZeroCostProxies(Study):
    id = "S-zero-cost-proxies"
    instrument = "spectral"
    claim = (
        "Over a population of small digits MLPs (width, depth, activation, learning rate, weight decay), the "
        "SynFlow score at initialisation ranks the final test accuracy (Spearman rho >= 0.3), unlike a random "
        "score; the other proxies and neumo's spectral quantities at initialisation are reported beside it."
    )
    citation = (
        "Abdelfattah et al. (2021), ICLR ('Zero-cost proxies for lightweight NAS'); Tanaka et al. (2020), "
        "NeurIPS (SynFlow); Mellor et al. (2021), ICML (NASWOT); White et al. (2022), arXiv:2210.03230"
    )
    Config = ZeroCostConfig
    presets = {"quick": {"n_configs": 32, "steps": 200, "n_perm": 1000}, "full": {}}
    nulls = {"random_score": "an i.i.d. uniform score per configuration (seed-derived)"}
    replication = (
        "a seed retrains the whole population: every initialisation, the data split, the batch order "
        "and the random score change; the configurations stay the same"
    )
    quick_cost_s = 10.0

    def checks(self, cfg):
        return [
            CheckSpec(
                "synflow_rho",
                "rho_synflow",
                ">=",
                "min_rho",
                controls=("random_score",),
                label="Spearman of SynFlow at init with final test accuracy",
            )
        ]

    def preconditions(self, cfg):
        return [
            GateSpec("best_acc", "best_test_acc", ">=", "min_best_acc", why="the best configuration learned"),
            GateSpec(
                "median_acc", "median_test_acc", ">=", "min_median_acc", why="most configurations learned beyond chance"
            ),
        ]

    def measure(self, cfg: ZeroCostConfig, ctx: StudyContext) -> Measurement:
        rows = run_population(cfg, ctx.seed)
        scores = {name: [r[name] for r in rows] for name in PROXIES}
        scores["log_lr"] = [math.log(r["lr"]) for r in rows]  # a hyperparameter, not a proxy: the reference
        values = rank_scores(rows, scores, cfg.n_perm, ctx.seed)
        acc = [r["test_acc"] for r in rows]
        values.update(
            {"best_test_acc": max(acc), "median_test_acc": float(np.median(acc)), "n_configs": float(len(rows))}
        )
        g = make_generator(ctx.seed, "zc-random-score")
        random = torch.rand(len(rows), generator=g, dtype=torch.float64).tolist()
        rnd = rank_scores(rows, {"synflow": random}, cfg.n_perm, ctx.seed)
        import pandas as pd

        ctx.run.write_table("population", pd.DataFrame(rows))
        if ctx.keep_figures:
            ctx.save_figure("proxy_rho", _figure(values))
        return Measurement(values=values, nulls={"random_score": rnd}, tables={"population": rows})

    def summarize(self, cfg, m):
        parts = ", ".join(f"{p} {m.get(f'rho_{p}', math.nan):+.2f}" for p in PROXIES)
        return (
            f"Spearman with final test accuracy: {parts}; log learning rate {m.get('rho_log_lr', math.nan):+.2f}; "
            f"random score {m.get('random_score:rho_synflow', math.nan):+.2f} (seed means)"
        )


def _figure(values):
    from neumo.report.figures import bar_plot

    fig, _ = bar_plot(
        {p: values.get(f"rho_{p}", math.nan) for p in (*PROXIES, "log_lr")},
        ylabel="Spearman with test accuracy",
        title="Proxies at initialisation",
    )
    fig.autofmt_xdate(rotation=45)
    return fig


__all__ = [
    "PROXIES",
    "ZeroCostConfig",
    "ZeroCostProxies",
    "init_proxies",
    "population",
    "rank_scores",
    "run_population",
]
