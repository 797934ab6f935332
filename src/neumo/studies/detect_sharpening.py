"""S-sharpening: sharpening the sampler makes text more detectable; truncation makes human text unreachable.

Scoring and generating model: the character n-gram fitted on ``lee_background``. Human text: the held-out
``lee`` corpus (50 other news articles), cut into a prefix and a continuation. Machine text: the model's
continuation of the same prefixes, sampled at each temperature T (token-level power sampling q^alpha is the
same distribution as T = 1/alpha, tested in neumo.detect.sampling). Curve 1: AUROC of the log-likelihood
detector against T. Curve 2: share of human tokens outside the model's top-p nucleus, for each p - tokens a
top-p sampler could never emit.
"""

from __future__ import annotations

import numpy as np

from neumo.config import StrictModel
from neumo.studies.base import Study, StudyContext, Verdict, check, judge
from neumo.studies.registry import register_study


class SharpeningConfig(StrictModel):
    temperatures: list[float] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
    top_ps: list[float] = [0.5, 0.8, 0.9, 0.95, 0.99]
    prefix_chars: int = 32
    continuation_chars: int = 64          # short, so that AUROC at T = 1 leaves headroom to rise
    n_docs: int = 50
    detector: str = "likelihood"
    min_headroom_closed: float = 0.5      # (AUROC(lowest T) - AUROC(T=1)) / (1 - AUROC(T=1))
    max_spearman_t_auroc: float = -0.8    # AUROC rises as T falls
    min_unreachable_at_0_9: float = 0.01  # share of human tokens outside the top-0.9 nucleus


@register_study
class Sharpening(Study):
    id = "S-sharpening"
    instrument = "detect"
    claim = ("Sampling at temperature < 1 (equivalently token-level power sampling) makes a model's text more "
             "detectable by log-likelihood, and top-p truncation leaves a measurable share of human tokens "
             "unreachable.")
    citation = "Holtzman et al. 2020 (nucleus sampling); Garces Arias et al. 2026; essay (training cause)"
    Config = SharpeningConfig
    presets = {"quick": {"continuation_chars": 40, "temperatures": [1.0, 0.8, 0.6, 0.5]}, "full": {}}

    def run(self, cfg: SharpeningConfig, ctx: StudyContext) -> Verdict:
        from scipy.stats import spearmanr

        from neumo.data.text import human_documents
        from neumo.detect.evaluate import auroc
        from neumo.detect.lm import load_lm
        from neumo.detect.registry import compute_scores
        from neumo.detect.sampling import generate
        from neumo.detect.score import score_ids

        lm = load_lm("ngram")
        need = cfg.prefix_chars + cfg.continuation_chars
        docs = [d[:need] for d in human_documents("lee") if len(d) >= need][: cfg.n_docs]
        human_ids = [lm.encode(d)[0] for d in docs]
        prefixes = [h[: cfg.prefix_chars] for h in human_ids]

        def cont_scores(seqs):
            return [compute_scores(s.tail(cfg.prefix_chars), [cfg.detector])[cfg.detector]
                    for s in score_ids(lm, seqs, batch_size=64)]

        h_scores = cont_scores(human_ids)
        rows = []
        for T in cfg.temperatures:
            machine = generate(lm, prefixes, cfg.continuation_chars, seed=ctx.seed, temperature=T)
            m_scores = cont_scores(machine)
            rows.append({"temperature": T, "alpha": 1.0 / T,
                         "auroc": auroc(h_scores + m_scores, [0] * len(docs) + [1] * len(docs)),
                         "mean_loglik_machine": float(np.mean(m_scores)),
                         "mean_loglik_human": float(np.mean(h_scores))})
        unreach = []
        for p in cfg.top_ps:
            st = score_ids(lm, human_ids, batch_size=64, top_p=p)
            frac = float(np.mean(np.concatenate([~s.tail(cfg.prefix_chars).in_top_p for s in st])))
            unreach.append({"top_p": p, "human_tokens_outside": frac})
        Ts = np.array([r["temperature"] for r in rows])
        au = np.array([r["auroc"] for r in rows])
        rho = float(spearmanr(Ts, au).statistic)
        gain = float(au[np.argmin(Ts)] - au[np.argmax(Ts)])
        headroom = gain / max(1.0 - float(au[np.argmax(Ts)]), 1e-12)
        at09 = next((u["human_tokens_outside"] for u in unreach if abs(u["top_p"] - 0.9) < 1e-9), float("nan"))
        import pandas as pd

        ctx.run.write_table("temperature", pd.DataFrame(rows))
        ctx.run.write_table("top_p", pd.DataFrame(unreach))
        ctx.save_figure("sharpening", _figure(rows, unreach))
        summary = (f"n-gram LM, {len(docs)} held-out human continuations of {cfg.continuation_chars} chars: "
                   f"{cfg.detector} AUROC " + ", ".join(f"T={r['temperature']:g}: {r['auroc']:.3f}" for r in rows)
                   + f" (Spearman {rho:.2f}). Human tokens outside top-p: "
                   + ", ".join(f"p={u['top_p']:g}: {u['human_tokens_outside']:.1%}" for u in unreach) + ".")
        checks = [check("headroom_closed_lowest_T", headroom, ">=", cfg.min_headroom_closed),
                  check("spearman_T_auroc", rho, "<=", cfg.max_spearman_t_auroc),
                  check("human_outside_top_p_0.9", at09, ">=", cfg.min_unreachable_at_0_9)]
        v = judge(self.id, checks, summary=summary,
                  measured={"auroc_gain_lowest_T": gain, **{f"auroc_T{r['temperature']:g}": r["auroc"] for r in rows}})
        v.tables["temperature"] = rows
        v.tables["top_p"] = unreach
        return v



def _figure(rows, unreach):
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot([r["temperature"] for r in rows], [r["auroc"] for r in rows], "o-")
    a.set(xlabel="temperature T (= 1/alpha)", ylabel="AUROC (log-likelihood)", title="sharpening")
    a.invert_xaxis()
    b.plot([u["top_p"] for u in unreach], [u["human_tokens_outside"] for u in unreach], "o-", color="#c44e52")
    b.set(xlabel="top-p", ylabel="human tokens outside nucleus", title="truncation")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


__all__ = ["Sharpening", "SharpeningConfig"]
