"""S-long-tail: are rare contexts more detectable? (the essay's testable hypothesis)

A synthetic language with a known p (:mod:`neumo.detect.corpus`, the package's default parameters but
``n_chat_styles``): one frequent "formal" style and many rare "chat" styles with Zipf weights. A character
n-gram scorer (order 3, interpolated absolute discounting) is fitted on documents of the whole language.
For each style: the AUROC of a pre-registered one-pass detector (Fast-DetectGPT's analytic criterion, Bao et
al. 2024) separating true continuations of that style from the model's continuations of the same true
prefixes, and the exact per-token KL(p || q) on true text of that style.

Judged over the styles of all seeds pooled (at least 40): Spearman(style frequency, AUROC) < 0 with a
bootstrap interval, its one-sided permutation p-value, and - within the rare (chat) styles alone, so that the
one formal style cannot carry the effect - the slope of AUROC on log(training documents), with a bootstrap
interval. Null arm ``uniform_styles``: the same automata and the same training size, but every style equally
frequent (no long tail); the style's frequency label stays its long-tailed weight, so the null must not show
the correlation. A seed changes the language (its automata), the training and evaluation documents and the
model's samples.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from pydantic import Field

from neumo.config import StrictModel
from neumo.detect.corpus import LanguageConfig
from neumo.seeding import numpy_rng
from neumo.stats import spearman, spearman_permutation
from neumo.studies.base import CheckSpec, Estimate, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study

UNIFORM = "uniform_styles"


class LongTailThresholds(Thresholds):
    max_spearman: float = Field(
        0.0,
        description="the claim's sign: frequency and detectability are "
        "anti-correlated (Spearman rho < 0 over pooled styles)",
    )
    max_perm_p: float = Field(
        0.05, description="conventional level of the one-sided permutation test of rho < 0 over the pooled styles"
    )
    max_rare_slope: float = Field(
        0.0,
        description="the claim's sign within the rare styles: AUROC falls as log(training documents) grows (slope < 0)",
    )
    max_excess_loss: float = Field(
        0.1,
        description="competence gate: the scorer's cross-entropy on held-out "
        "text of the language within 10% of its true entropy",
    )


class LongTailConfig(StrictModel):
    # package defaults but the number of styles: 31 per seed (30 rare chat styles for the within-rare
    # regression), so 3 seeds pool 93 styles (>= 40)
    language: LanguageConfig = LanguageConfig(n_chat_styles=30)
    n_train_docs: int = 20000
    doc_len: int = 20
    ngram_order: int = 3
    n_eval_docs: int = 100  # per style, each side
    prefix_len: int = 8
    detector: str = "fast_detectgpt"  # the judged detector (pre-registered)
    detectors: list[str] = ["likelihood", "logrank", "fast_detectgpt"]  # reported
    n_perm: int = 2000
    n_boot: int = 2000
    band_edges: list[float] = [0.01, 0.1]  # frequency bands for the share-of-text table
    thresholds: LongTailThresholds = LongTailThresholds()


@register_study
class LongTail(Study):
    id = "S-long-tail"
    instrument = "detect"
    claim = (
        "In a language with long-tailed latent contexts, a model's text is more detectable in rare contexts: "
        "over the styles of several languages, the Spearman correlation between style frequency and "
        "detection AUROC is negative (permutation test), and within the rare styles alone AUROC falls "
        "with log(training documents); a language whose styles are equally frequent shows neither."
    )
    citation = "Essay hypothesis (data cause of detectability); protocol of Bao et al. 2024"
    Config = LongTailConfig
    presets = {"quick": {}, "full": {}}  # the same measurement; quick runs 3 seeds, full 5
    nulls = {
        UNIFORM: "the same automata and training size, every style equally frequent (no long tail); "
        "styles keep their long-tailed frequency as a label"
    }
    threshold_history = (
        "no threshold changed; after a first look (15 chat styles: quick inconclusive, full "
        "holds) the language got 30 chat styles and both presets 100 documents per style"
    )
    replication = (
        "the seed builds a different language (automata), draws the training and evaluation "
        "documents and the model's samples; the styles of all seeds are pooled"
    )
    quick_cost_s = 17.0  # CPU seconds measured on one thread (wall 60 s on a 2-core machine at load 15)

    def checks(self, cfg):
        return [
            CheckSpec(
                "spearman_frequency_auroc",
                "spearman_frequency_auroc",
                "<",
                "max_spearman",
                controls=(UNIFORM,),
                label="Spearman(style frequency, AUROC), pooled styles",
            ),
            CheckSpec(
                "perm_p_frequency_auroc",
                "perm_p_frequency_auroc",
                "<=",
                "max_perm_p",
                controls=(UNIFORM,),
                label="one-sided permutation p of rho < 0",
            ),
            CheckSpec(
                "rare_slope_auroc_log_docs",
                "rare_slope_auroc_log_docs",
                "<",
                "max_rare_slope",
                controls=(UNIFORM,),
                label="slope of AUROC on log(training docs), chat styles only",
            ),
        ]

    def preconditions(self, cfg):
        return [GateSpec("excess_loss", "excess_loss", "<=", "max_excess_loss", why="the scorer learned the language")]

    def measure(self, cfg: LongTailConfig, ctx: StudyContext) -> Measurement:
        from neumo.detect.corpus import HierarchicalLanguage

        design = HierarchicalLanguage.build(cfg.language, ctx.seed)
        lang = (
            design if ctx.arm != UNIFORM else replace(design, weights=np.full(design.n_styles, 1.0 / design.n_styles))
        )
        train, train_styles = lang.sample(cfg.n_train_docs, cfg.doc_len, seed=ctx.seed)
        lm = ngram_on_ids(list(train), lang.vocab_size, cfg.ngram_order)
        rows = [_style_row(lang, lm, k, cfg, ctx.seed) for k in range(lang.n_styles)]
        for r in rows:
            r["seed"] = ctx.seed
            r["weight"] = float(design.weights[r["style_index"]])  # the long-tailed frequency (a label in the null)
            r["train_docs"] = int(np.sum(train_styles == r["style_index"]))
            # regressor: the style's training documents; in the null, those it has in the long-tailed corpus
            r["log_docs"] = float(
                np.log(max(r["train_docs"], 1) if ctx.arm != UNIFORM else cfg.n_train_docs * r["weight"])
            )
        test, _ = lang.sample(300, cfg.doc_len, seed=10_000 + ctx.seed)
        excess = excess_loss(lang, lm, test)
        values = {
            "excess_loss": excess,
            **_per_seed_stats(rows, cfg, ctx.seed),
            "auroc_formal": rows[0]["auroc"],
            "auroc_chat_mean": float(np.mean([r["auroc"] for r in rows[1:]])),
            "kl_formal": rows[0]["kl_per_token"],
            "kl_chat_mean": float(np.mean([r["kl_per_token"] for r in rows[1:]])),
            "share_formal": float(design.weights[0]),
        }
        if ctx.keep_figures:
            ctx.save_figure("auroc_vs_frequency", _figure(rows))
        table = [{k: (round(x, 4) if isinstance(x, float) else x) for k, x in r.items()} for r in rows]
        return Measurement(values=values, tables={"styles": table, "bands": _bands(rows, cfg.band_edges)})

    def pool(self, cfg, units):
        out: dict[str, Estimate] = {}
        treat = [_rows(u["treatment"]) for u in units if "treatment" in u]
        null = [_rows(u[UNIFORM]) for u in units if UNIFORM in u]
        rows = [r for rs in treat for r in rs]
        if len(rows) < 3:
            return out
        per = {
            q: tuple(float(u["treatment"].values.get(q, np.nan)) for u in units)
            for q in ("spearman_frequency_auroc", "perm_p_frequency_auroc", "rare_slope_auroc_log_docs")
        }
        null_rows = [r for rs in null for r in rs]
        rho, p = _pooled_spearman(rows, cfg.n_perm)
        nrho, np_ = _pooled_spearman(null_rows, cfg.n_perm) if len(null_rows) >= 3 else (None, None)
        lo, hi = _boot_spearman([r["weight"] for r in rows], [r["auroc"] for r in rows], cfg.n_boot)
        out["spearman_frequency_auroc"] = Estimate(
            rho,
            lo,
            hi,
            per["spearman_frequency_auroc"],
            nrho,
            f"{len(rows)} styles pooled over {len(treat)} seeds; percentile bootstrap over styles",
        )
        out["perm_p_frequency_auroc"] = Estimate(
            p,
            p,
            p,
            per["perm_p_frequency_auroc"],
            np_,
            f"one-sided permutation p over {len(rows)} pooled styles ({cfg.n_perm} permutations)",
        )
        rare = [r for r in rows if r["register"] != "formal"]
        slope, lo, hi = _pooled_slope(rare, cfg.n_boot)
        nslope = _pooled_slope([r for r in null_rows if r["register"] != "formal"], 0)[0] if null_rows else None
        out["rare_slope_auroc_log_docs"] = Estimate(
            slope,
            lo,
            hi,
            per["rare_slope_auroc_log_docs"],
            nslope,
            f"{len(rare)} chat styles pooled, AUROC centred per seed; percentile bootstrap over styles",
        )
        return out

    def summarize(self, cfg, m):
        g = lambda k: m.get(k, float("nan"))  # noqa: E731
        return (
            f"formal AUROC {g('auroc_formal'):.3f}, chat mean {g('auroc_chat_mean'):.3f}; KL(p||q) per token "
            f"formal {g('kl_formal'):.3f}, chat {g('kl_chat_mean'):.3f}. Pooled Spearman(frequency, AUROC) "
            f"{g('spearman_frequency_auroc'):.2f} (p = {g('perm_p_frequency_auroc'):.3g}); slope within chat "
            f"styles {g('rare_slope_auroc_log_docs'):.3f} per e-fold of training documents; uniform-style "
            f"null: Spearman {g(UNIFORM + ':spearman_frequency_auroc'):.2f} (seed means)."
        )


def ngram_on_ids(sequences: list[np.ndarray], vocab_size: int, order: int):
    """An :class:`~neumo.detect.lm.ngram.NgramLM` over abstract ids 0..V-1 (id V is its start token)."""
    from neumo.detect.lm.ngram import NgramCounts, NgramLM

    alphabet = "".join(chr(0x100 + i) for i in range(vocab_size))
    return NgramLM(
        alphabet, NgramCounts.fit(sequences, vocab_size + 1, order, pad_id=vocab_size), name=f"ngram{order}-ids"
    )


def model_probs(lm, ids: np.ndarray) -> np.ndarray:
    """ids (n, T) -> the scorer's q(x_t = w | x_<t) (n, T, V) over the language's V symbols (start token dropped)."""
    x = torch.tensor(np.c_[np.full(len(ids), lm.bos_id), ids], dtype=torch.long)
    with torch.no_grad():
        q = torch.softmax(lm.forward(x, torch.ones_like(x))[:, :-1].double(), -1).numpy()
    return q[..., : lm.vocab_size - 1]  # p gives the start token no mass: it adds 0 to KL


def excess_loss(lang, lm, ids: np.ndarray) -> float:
    """(cross-entropy of the scorer - true entropy) / true entropy, per token of ``ids`` drawn from ``lang``."""
    n, T = ids.shape
    at = (np.arange(n)[:, None], np.arange(T)[None], ids)
    h = -np.log(lang.next_token_probs(ids)[at]).mean()
    ce = -np.log(model_probs(lm, ids)[at]).mean()
    return float((ce - h) / h)


def _style_row(lang, lm, k: int, cfg: LongTailConfig, seed: int) -> dict:
    from neumo.detect.evaluate import auroc
    from neumo.detect.registry import compute_scores
    from neumo.detect.sampling import generate

    human, _ = lang.sample(cfg.n_eval_docs, cfg.doc_len, seed=20_000 + seed, style=k)
    machine = np.array(
        generate(lm, [list(h[: cfg.prefix_len]) for h in human], cfg.doc_len - cfg.prefix_len, seed=seed * 1000 + k)
    )
    stats = continuation_stats(lm, np.r_[human, machine], cfg.prefix_len)
    labels = [0] * len(human) + [1] * len(machine)
    names = list(dict.fromkeys([cfg.detector, *cfg.detectors]))
    scores = [compute_scores(s, names) for s in stats]
    row = {"style": lang.names[k], "style_index": k, "register": lang.registers[k]}
    for name in names:
        row[f"auroc_{name}"] = auroc([s[name] for s in scores], labels)
    row["auroc"] = row[f"auroc_{cfg.detector}"]
    p = lang.next_token_probs(human)  # (n, T, V) exact
    q = model_probs(lm, human)
    row["kl_per_token"] = float((p * (np.log(p) - np.log(q))).sum(-1)[:, cfg.prefix_len :].mean())
    return row


def continuation_stats(lm, ids: np.ndarray, start: int) -> list:
    """Per-text :class:`~neumo.detect.score.TokenStats` of tokens ``start`` onwards of equally long id rows,
    from one forward pass (what :func:`neumo.detect.score.score_ids` gives for texts within one window)."""
    from neumo.detect.score import TokenStats
    from neumo.detect.stats import token_stats

    n, T = ids.shape
    x = torch.tensor(np.c_[np.full(n, lm.bos_id), ids], dtype=torch.long)
    with torch.no_grad():
        logits = lm.forward(x, torch.ones_like(x))[:, start:-1]  # (n, T - start, V)
    tgt = torch.from_numpy(ids[:, start:].copy())
    st = {
        k: v.reshape(n, T - start).numpy()
        for k, v in token_stats(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1)).items()
    }
    return [
        TokenStats(
            lm.name,
            ids[i, start:],
            [str(t) for t in ids[i, start:]],
            st["logprob"][i].astype(float),
            st["rank"][i],
            st["entropy"][i].astype(float),
            st["var"][i].astype(float),
            st["in_top_k"][i],
            st["in_top_p"][i],
        )
        for i in range(n)
    ]


def one_sided_negative_p(x, y, n_perm: int, seed: int = 0) -> tuple[float, float]:
    """(rho, p of rho < 0): the two-sided permutation p of :func:`neumo.stats.spearman_permutation` halved on
    the claimed side (the permutation distribution of rho is symmetric about 0), 1 - p/2 on the other."""
    rho, p2 = spearman_permutation(x, y, n_perm=n_perm, seed=seed)
    return rho, (p2 / 2 if rho < 0 else 1 - p2 / 2)


def _pooled_spearman(rows, n_perm: int) -> tuple[float, float]:
    return one_sided_negative_p([r["weight"] for r in rows], [r["auroc"] for r in rows], n_perm)


def slope(x, y) -> float:
    """Least-squares slope of y on x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    xc = x - x.mean()
    d = float(xc @ xc)
    return float(xc @ (y - y.mean()) / d) if d > 0 else float("nan")


def _pooled_slope(rows, n_boot: int) -> tuple[float, float | None, float | None]:
    """Slope of AUROC (centred per seed) on log(training documents) over pooled rows, with a bootstrap interval."""
    if len(rows) < 3:
        return float("nan"), None, None
    seeds = np.array([r["seed"] for r in rows])
    y = np.array([r["auroc"] for r in rows], float)
    x = np.array([r["log_docs"] for r in rows], float)
    for s in np.unique(seeds):
        y[seeds == s] -= y[seeds == s].mean()
        x[seeds == s] -= x[seeds == s].mean()
    b = slope(x, y)
    if not n_boot:
        return b, None, None
    idx = numpy_rng(0, "bootstrap", "slope").integers(0, len(x), size=(n_boot, len(x)))
    xs, ys = x[idx], y[idx]
    xc = xs - xs.mean(1, keepdims=True)
    d = (xc * xc).sum(1)
    boots = (xc * (ys - ys.mean(1, keepdims=True))).sum(1) / np.where(d > 0, d, np.nan)
    lo, hi = np.nanquantile(boots, [0.025, 0.975])
    return b, float(lo), float(hi)


def _boot_spearman(x, y, n_boot: int) -> tuple[float, float]:
    """Percentile 95% bootstrap interval of Spearman's rho over resampled (x, y) pairs."""
    from scipy.stats import rankdata

    x, y = np.asarray(x, float), np.asarray(y, float)
    idx = numpy_rng(0, "bootstrap", "spearman").integers(0, len(x), size=(n_boot, len(x)))
    rx, ry = rankdata(x[idx], axis=1), rankdata(y[idx], axis=1)
    rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    den = np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1))
    boots = (rx * ry).sum(1) / np.where(den > 0, den, np.nan)
    lo, hi = np.nanquantile(boots, [0.025, 0.975])
    return float(lo), float(hi)


def _per_seed_stats(rows, cfg: LongTailConfig, seed: int) -> dict[str, float]:
    rho, p = one_sided_negative_p([r["weight"] for r in rows], [r["auroc"] for r in rows], cfg.n_perm, seed)
    rare = [r for r in rows if r["register"] != "formal"]
    return {
        "spearman_frequency_auroc": rho,
        "perm_p_frequency_auroc": p,
        "rare_slope_auroc_log_docs": slope([r["log_docs"] for r in rare], [r["auroc"] for r in rare]),
        "spearman_frequency_kl": spearman([r["weight"] for r in rows], [r["kl_per_token"] for r in rows]),
    }


def _rows(m: Measurement) -> list[dict]:
    return [dict(r) for r in m.tables.get("styles", [])]


def _bands(rows: list[dict], edges: list[float]) -> list[dict]:
    """Share of text and mean AUROC of styles grouped by frequency band (as in the essay's 99% example)."""
    cuts = [0.0] + sorted(edges) + [1.0 + 1e-12]
    out = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        sel = [r for r in rows if lo <= r["weight"] < hi]
        if sel:
            out.append(
                {
                    "band": f"[{lo:g}, {min(hi, 1.0):g})",
                    "n_styles": len(sel),
                    "share_of_text": float(sum(r["weight"] for r in sel)),
                    "mean_auroc": float(np.mean([r["auroc"] for r in sel])),
                    "mean_kl_per_token": float(np.mean([r["kl_per_token"] for r in sel])),
                }
            )
    return out


def _figure(rows):
    from neumo.report.figures import line_plot

    freq = np.array([r["weight"] for r in rows])
    o = np.argsort(freq)
    fig, _ = line_plot(
        {
            "AUROC": (freq[o], np.array([r["auroc"] for r in rows])[o]),
            "KL(p||q) per token": (freq[o], np.array([r["kl_per_token"] for r in rows])[o]),
        },
        xlabel="style frequency",
        ylabel="value",
        logx=True,
        title="detectability vs context frequency",
    )
    return fig


__all__ = ["LongTail", "LongTailConfig", "excess_loss", "ngram_on_ids", "one_sided_negative_p", "slope"]
