"""S-sharpening: sharpening the sampler makes text detectable; top-p truncation excludes human tokens.

The synthetic language of :mod:`neumo.detect.corpus` (package defaults) has a known next-token distribution
p. Human text: documents drawn from p, cut into a prefix and a continuation. Generator: the language itself,
continuing the same prefixes from p^(1/T) renormalised per token (temperature T; token-level power sampling
q^alpha is the same distribution with alpha = 1/T, tested in :mod:`neumo.detect.sampling`). Scorer: a model
other than the generator, an order-3 n-gram fitted on other documents of the language. So at T = 1 machine
text has the human distribution and nothing can detect it (the null ``untruncated_T1``); any detectability
at T < 1 comes from sharpening alone.

Curve 1: AUROC of the scorer's log-likelihood detector against T. Curve 2: the share of human tokens outside
the scorer's top-p nucleus (tokens a top-p sampler of the scorer could never emit), against 1 - p; the
share outside the nucleus of the true p (``oracle_nucleus``) is reported beside it. A seed changes the
language (its automata), the scorer's training documents, the human documents and the samples.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field, model_validator

from neumo.config import StrictModel
from neumo.detect.corpus import LanguageConfig
from neumo.seeding import numpy_rng
from neumo.stats import spearman
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study

T1 = "untruncated_T1"
ORACLE = "oracle_nucleus"


class SharpeningThresholds(Thresholds):
    min_auroc: float = Field(
        0.6,
        description="detectable above chance: AUROC at least 0.1 above 0.5 at the "
        "lowest T (the untruncated T = 1 null must not reach it)",
    )
    min_auroc_gain: float = Field(
        0.1, description="sharpening adds at least a tenth of the AUROC range over the T = 1 null of the same seed"
    )
    min_outside_over_nominal: float = Field(
        0.5,
        description="'a measurable share' of human tokens outside the top-0.9 nucleus: at least half the nominal 1 - p",
    )
    max_excess_loss: float = Field(
        0.1,
        description="competence gate: the scorer's cross-entropy on held-out human text within 10% of the true entropy",
    )


class SharpeningConfig(StrictModel):
    language: LanguageConfig = LanguageConfig()
    n_train_docs: int = 20000  # the scorer's training documents
    train_doc_len: int = 40
    ngram_order: int = 3
    temperatures: list[float] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
    top_ps: list[float] = [0.5, 0.8, 0.9, 0.95, 0.99]
    judged_top_p: float = 0.9
    prefix_len: int = 8
    continuation_len: int = 24
    n_docs: int = 300  # human continuations (and as many machine ones per T)
    detector: str = "likelihood"
    thresholds: SharpeningThresholds = SharpeningThresholds()

    @model_validator(mode="after")
    def _consistent(self):
        from neumo.detect.registry import detector_names

        if any(not (t > 0 and math.isfinite(t)) for t in self.temperatures) or 1.0 not in self.temperatures:
            raise ValueError("temperatures must be finite and > 0 and include 1.0 (the T = 1 null arm)")
        if any(not 0 < p < 1 for p in self.top_ps) or self.judged_top_p not in self.top_ps:
            raise ValueError(f"top_ps must lie in (0, 1) and include judged_top_p ({self.judged_top_p})")
        if self.detector not in detector_names():
            raise ValueError(f"detector {self.detector!r} is unknown; known: {', '.join(detector_names())}")
        return self


@register_study
class Sharpening(Study):
    id = "S-sharpening"
    instrument = "detect"
    claim = (
        "Sampling at temperature T < 1 (equivalently token-level power sampling) from a generator whose "
        "T = 1 text is indistinguishable from human text makes that text detectable by the log-likelihood "
        "of a different model; and top-p truncation of that model leaves human tokens unreachable at a "
        "rate comparable to 1 - p."
    )
    citation = "Holtzman et al. 2020 (nucleus sampling); Garces Arias et al. 2026; essay (training cause)"
    Config = SharpeningConfig
    presets = {"quick": {"temperatures": [1.0, 0.8, 0.6, 0.5], "n_docs": 200}, "full": {}}
    nulls = {
        T1: "untruncated T = 1 samples of the generator (the language): the human distribution itself",
        ORACLE: "the share of human tokens outside the top-p nucleus of the true p (a calibrated scorer)",
    }
    replication = (
        "the seed builds a different language (automata), draws the scorer's training documents, "
        "the human documents and the generator's samples"
    )
    quick_cost_s = 7.0  # CPU seconds measured on one thread (wall 25 s on a 2-core machine at load 15)

    def checks(self, cfg):
        return [
            CheckSpec(
                "auroc_gain_lowest_T",
                "auroc_lowest_T",
                ">=",
                "min_auroc_gain",
                null=T1,
                relation="difference",
                label="AUROC at the lowest T minus AUROC at T = 1",
            ),
            CheckSpec(
                "auroc_lowest_T",
                "auroc_lowest_T",
                ">=",
                "min_auroc",
                controls=(T1,),
                label="log-likelihood AUROC at the lowest T",
            ),
            CheckSpec(
                "outside_top_p_over_nominal",
                "outside_over_nominal",
                ">=",
                "min_outside_over_nominal",
                label="share of human tokens outside the scorer's top-0.9 nucleus / (1 - 0.9)",
            ),
        ]

    def preconditions(self, cfg):
        return [GateSpec("excess_loss", "excess_loss", "<=", "max_excess_loss", why="the scorer learned the language")]

    def measure(self, cfg: SharpeningConfig, ctx: StudyContext) -> Measurement:
        from neumo.detect.corpus import HierarchicalLanguage
        from neumo.detect.evaluate import auroc
        from neumo.detect.registry import compute_scores
        from neumo.studies.detect_long_tail import continuation_stats, excess_loss, model_probs, ngram_on_ids

        lang = HierarchicalLanguage.build(cfg.language, ctx.seed)
        train, _ = lang.sample(cfg.n_train_docs, cfg.train_doc_len, seed=ctx.seed)
        lm = ngram_on_ids(list(train), lang.vocab_size, cfg.ngram_order)
        human, _ = lang.sample(cfg.n_docs, cfg.prefix_len + cfg.continuation_len, seed=10_000 + ctx.seed)

        def scores(ids):
            stats = continuation_stats(lm, ids, cfg.prefix_len)
            return [compute_scores(s, [cfg.detector])[cfg.detector] for s in stats]

        h = scores(human)
        rows = []
        for T in cfg.temperatures:
            machine = continue_tempered(
                lang, human[:, : cfg.prefix_len], cfg.continuation_len, T, seed=derive(ctx.seed, T)
            )
            m = scores(machine)
            rows.append(
                {
                    "temperature": T,
                    "alpha": 1.0 / T,
                    "auroc": auroc(h + m, [0] * len(h) + [1] * len(m)),
                    "mean_loglik_machine": float(np.mean(m)),
                    "mean_loglik_human": float(np.mean(h)),
                }
            )
        cont = human[:, cfg.prefix_len :]
        p_true = lang.next_token_probs(human)[:, cfg.prefix_len :]
        q_model = model_probs(lm, human)[:, cfg.prefix_len :]
        unreach = []
        for p in cfg.top_ps:
            model = float(np.mean(~in_nucleus(q_model, cont, p)))
            oracle = float(np.mean(~in_nucleus(p_true, cont, p)))
            unreach.append({"top_p": p, "nominal": 1 - p, "human_tokens_outside": model, "oracle_outside": oracle})
        at = next(u for u in unreach if u["top_p"] == cfg.judged_top_p)  # the config guarantees it is there
        lowest = min(rows, key=lambda r: r["temperature"])
        t1 = next(r for r in rows if r["temperature"] == 1.0)  # the config guarantees T = 1 is there
        test, _ = lang.sample(300, cfg.train_doc_len, seed=30_000 + ctx.seed)
        values = {
            "excess_loss": excess_loss(lang, lm, test),
            "auroc_lowest_T": lowest["auroc"],
            "outside_over_nominal": at["human_tokens_outside"] / (1 - at["top_p"]),
            "spearman_T_auroc": spearman([r["temperature"] for r in rows], [r["auroc"] for r in rows]),
            **{f"auroc_T{r['temperature']:g}": r["auroc"] for r in rows},
            **{f"outside_top_p{u['top_p']:g}": u["human_tokens_outside"] for u in unreach},
        }
        nulls = {
            T1: {"auroc_lowest_T": t1["auroc"]},
            ORACLE: {
                "outside_over_nominal": at["oracle_outside"] / (1 - at["top_p"]),
                **{f"outside_top_p{u['top_p']:g}": u["oracle_outside"] for u in unreach},
            },
        }
        if ctx.keep_figures:
            ctx.save_figure("sharpening", _figure(rows, unreach))
        return Measurement(values=values, nulls=nulls, tables={"temperature": rows, "top_p": unreach})

    def summarize(self, cfg, m):
        g = lambda k: m.get(k, float("nan"))  # noqa: E731
        return (
            f"log-likelihood AUROC of an n-gram scorer, generator = the language: "
            f"T = 1 {g(T1 + ':auroc_lowest_T'):.3f}, "
            f"lowest T {g('auroc_lowest_T'):.3f}. Human tokens outside the scorer's top-{cfg.judged_top_p:g} "
            f"nucleus: {g('outside_over_nominal'):.2f} x (1 - p); true p's nucleus "
            f"{g(ORACLE + ':outside_over_nominal'):.2f} x (seed means)."
        )


def derive(seed: int, temperature: float) -> int:
    return int(seed) * 1000 + int(round(temperature * 100))


def continue_tempered(lang, prefixes: np.ndarray, n_new: int, temperature: float, seed: int) -> np.ndarray:
    """Continue each prefix (n, P) by ``n_new`` symbols drawn from the language's true next-token distribution
    raised to 1/T and renormalised (the posterior over styles is updated exactly as in
    :meth:`~neumo.detect.corpus.HierarchicalLanguage.next_token_probs`). Returns (n, P + n_new)."""
    if temperature <= 0:
        raise ValueError(f"The 'temperature' parameter must be > 0. Got {temperature!r} instead.")
    rng = numpy_rng(seed, "continue_tempered")
    n = prefixes.shape[0]
    K, V = lang.n_styles, lang.vocab_size
    kk = np.arange(K)[:, None]
    logw = np.log(lang.weights)[:, None] + np.zeros((1, n))  # (K, n)
    s = np.zeros((K, n), np.int64)
    out = [prefixes[:, t] for t in range(prefixes.shape[1])]

    def step(w):
        nonlocal logw, s
        logw = logw + np.log(lang.emissions[kk, s, w[None]])
        s = lang.delta[kk, s, w[None]]

    for w in out:
        step(w)
    for _ in range(n_new):
        post = np.exp(logw - logw.max(0))
        post /= post.sum(0)
        p = np.einsum("kn,knv->nv", post, lang.emissions[kk, s])  # (n, V)
        q = p ** (1.0 / temperature)
        q /= q.sum(1, keepdims=True)
        w = np.minimum((q.cumsum(1) < rng.random((n, 1))).sum(1), V - 1)  # inverse-CDF draw
        out.append(w)
        step(w)
    return np.stack(out, 1)


def in_nucleus(probs: np.ndarray, targets: np.ndarray, top_p: float) -> np.ndarray:
    """probs (..., V), targets (...) -> whether each target lies in the top-p nucleus (the mass strictly more
    probable than it is < p: the rule of :func:`neumo.detect.stats.token_stats`)."""
    pt = np.take_along_axis(probs, targets[..., None], -1)
    above = (probs * (probs > pt)).sum(-1)
    return above < top_p


def _figure(rows, unreach):
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot([r["temperature"] for r in rows], [r["auroc"] for r in rows], "o-")
    a.axhline(0.5, color="grey", lw=0.8, ls="--")
    a.set(xlabel="temperature T (= 1/alpha)", ylabel="AUROC (log-likelihood)", title="sharpening")
    a.invert_xaxis()
    ps = [u["top_p"] for u in unreach]
    b.plot(ps, [u["human_tokens_outside"] for u in unreach], "o-", color="#c44e52", label="n-gram scorer")
    b.plot(ps, [u["oracle_outside"] for u in unreach], "s-", color="#55a868", label="true p")
    b.plot(ps, [u["nominal"] for u in unreach], ":", color="grey", label="1 - p")
    b.set(xlabel="top-p", ylabel="human tokens outside nucleus", title="truncation")
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


__all__ = ["Sharpening", "SharpeningConfig", "continue_tempered", "in_nucleus"]
