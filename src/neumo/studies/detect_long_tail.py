"""S-long-tail: are rare contexts more detectable? (the essay's testable hypothesis)

A synthetic language with a known p (neumo.detect.corpus): one frequent "formal" style and many rare "chat"
styles (Zipf weights), each a probabilistic automaton derived from its register's. A tiny Transformer is
trained on samples of the whole language. For each style: the exact per-token KL(p || q) on true text of that
style (p = the language's true next-token distribution, exact), and the AUROC of one-pass detectors
separating true continuations from model continuations of the same true prefixes (the Fast-DetectGPT
protocol); the best detector per style is reported. Claim: Spearman(style frequency, AUROC) < 0.
"""

from __future__ import annotations

import numpy as np
import torch

from neumo.config import StrictModel
from neumo.detect.corpus import LanguageConfig
from neumo.studies.base import Study, StudyContext, Verdict, check, judge
from neumo.studies.registry import register_study


class LongTailConfig(StrictModel):
    language: LanguageConfig = LanguageConfig(head_weight=0.8, style_mix=0.2, style_rewire=0.1)
    n_train_docs: int = 4000
    doc_len: int = 20
    d_model: int = 32
    n_layers: int = 2
    train_steps: int = 1500
    batch_size: int = 32
    lr: float = 3e-3
    n_eval_docs: int = 150              # per style, each side
    prefix_len: int = 8
    detectors: list[str] = ["likelihood", "logrank", "fast_detectgpt"]
    max_spearman: float = -0.3          # the claim: frequency and detectability are anti-correlated
    band_edges: list[float] = [0.01, 0.1]   # frequency bands for the share-of-text table


@register_study
class LongTail(Study):
    id = "S-long-tail"
    instrument = "detect"
    claim = ("In a language with long-tailed latent contexts, a model's text is more detectable in rare contexts: "
             "the Spearman correlation between context frequency and detection AUROC is negative.")
    citation = "Essay hypothesis (data cause of detectability); protocol of Bao et al. 2024"
    Config = LongTailConfig
    presets = {"quick": {"n_train_docs": 2000, "train_steps": 500, "n_eval_docs": 100}, "full": {}}

    def run(self, cfg: LongTailConfig, ctx: StudyContext) -> Verdict:
        from scipy.stats import spearmanr

        from neumo.detect.corpus import HierarchicalLanguage
        from neumo.detect.lm.tiny import TinyLM, train_tiny

        lang = HierarchicalLanguage.build(cfg.language, ctx.seed)
        train, train_styles = lang.sample(cfg.n_train_docs, cfg.doc_len, seed=ctx.seed)
        V = lang.vocab_size
        model = train_tiny(list(train), V, d_model=cfg.d_model, n_layers=cfg.n_layers, seq_len=cfg.doc_len + 1,
                           steps=cfg.train_steps, batch_size=cfg.batch_size, lr=cfg.lr, seed=ctx.seed)
        lm = TinyLM(model, [f"s{i}" for i in range(V)], name="tiny-long-tail")
        rows = [_style_row(lang, lm, k, cfg, ctx.seed) for k in range(lang.n_styles)]
        for r in rows:
            r["train_docs"] = int(np.sum(train_styles == r["style_index"]))
        freq = np.array([r["weight"] for r in rows])
        best = np.array([r["auroc_best"] for r in rows])
        kl = np.array([r["kl_per_token"] for r in rows])
        rho = float(spearmanr(freq, best).statistic)
        rho_kl = float(spearmanr(freq, kl).statistic)
        head, tail = rows[0], rows[1:]
        share_head = float(freq[0])
        bands = _bands(rows, cfg.band_edges)
        import pandas as pd

        ctx.run.write_table("styles", pd.DataFrame(rows))
        ctx.save_figure("auroc_vs_frequency", _figure(freq, best, kl))
        summary = (f"{lang.n_styles} styles; the formal style holds {share_head:.0%} of the text, the "
                   f"{len(tail)} chat styles {1 - share_head:.0%}. Best-detector AUROC: "
                   f"formal {head['auroc_best']:.3f}, "
                   f"chat mean {np.mean([r['auroc_best'] for r in tail]):.3f}; KL(p||q) per token: formal "
                   f"{head['kl_per_token']:.3f}, chat mean {np.mean([r['kl_per_token'] for r in tail]):.3f}. "
                   f"Spearman(frequency, AUROC) = {rho:.2f}; Spearman(frequency, KL) = {rho_kl:.2f}.")
        v = judge(self.id, [check("spearman_frequency_auroc", rho, "<=", cfg.max_spearman)], summary=summary,
                  measured={"spearman_frequency_kl": rho_kl, "share_formal": share_head,
                            "auroc_formal": head["auroc_best"],
                            "auroc_chat_mean": float(np.mean([r["auroc_best"] for r in tail])),
                            "kl_formal": head["kl_per_token"],
                            "kl_chat_mean": float(np.mean([r["kl_per_token"] for r in tail]))})
        v.tables["bands"] = bands
        v.summary += " By band: " + "; ".join(f"{b['band']}: {b['share_of_text']:.1%} of text, {b['n_styles']} styles, "
                                              f"AUROC {b['mean_auroc_best']:.3f}" for b in bands) + "."
        v.tables["styles"] = [{k: (round(x, 4) if isinstance(x, float) else x) for k, x in r.items()} for r in rows]
        return v


def _bands(rows: list[dict], edges: list[float]) -> list[dict]:
    """Share of text and mean best AUROC of styles grouped by frequency band (as in the essay's 99% example)."""
    cuts = [0.0] + sorted(edges) + [1.0 + 1e-12]
    out = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        sel = [r for r in rows if lo <= r["weight"] < hi]
        if sel:
            out.append({"band": f"[{lo:g}, {min(hi, 1.0):g})", "n_styles": len(sel),
                        "share_of_text": float(sum(r["weight"] for r in sel)),
                        "mean_auroc_best": float(np.mean([r["auroc_best"] for r in sel])),
                        "mean_kl_per_token": float(np.mean([r["kl_per_token"] for r in sel]))})
    return out


def _style_row(lang, lm, k: int, cfg: LongTailConfig, seed: int) -> dict:
    from neumo.detect.evaluate import auroc
    from neumo.detect.registry import compute_scores
    from neumo.detect.sampling import generate
    from neumo.detect.score import score_ids

    human, _ = lang.sample(cfg.n_eval_docs, cfg.doc_len, seed=seed + 1, style=k)
    machine = generate(lm, [list(h[: cfg.prefix_len]) for h in human], cfg.doc_len - cfg.prefix_len,
                       seed=seed + k)
    stats = score_ids(lm, [list(h) for h in human] + machine, batch_size=256)
    cut = [s.tail(cfg.prefix_len) for s in stats]
    labels = [0] * len(human) + [1] * len(machine)
    row = {"style": lang.names[k], "style_index": k, "register": lang.registers[k], "weight": float(lang.weights[k])}
    for name in cfg.detectors:
        row[f"auroc_{name}"] = auroc([compute_scores(s, [name])[name] for s in cut], labels)
    row["auroc_best"] = max(row[f"auroc_{n}"] for n in cfg.detectors)
    # exact per-token KL(p || q) at the continuation positions of true text of this style
    p = lang.next_token_probs(human)                                        # (n, T, V)
    ids = torch.tensor([[lm.bos_id] + list(h) for h in human])
    with torch.no_grad():
        q = torch.softmax(lm.forward(ids, torch.ones_like(ids))[:, :-1].double(), -1).numpy()   # (n, T, V)
    q = q[..., : lang.vocab_size]                    # p gives the start token no mass: it adds 0 to KL
    kl = (p * (np.log(p) - np.log(q))).sum(-1)[:, cfg.prefix_len:]
    row["kl_per_token"] = float(kl.mean())
    return row



def _figure(freq, best, kl):
    from neumo.report.figures import line_plot

    o = np.argsort(freq)
    fig, ax = line_plot({"best-detector AUROC": (freq[o], best[o]), "KL(p||q) per token": (freq[o], kl[o])},
                        xlabel="style frequency", ylabel="value", logx=True,
                        title="detectability vs context frequency")
    return fig


__all__ = ["LongTail", "LongTailConfig"]
