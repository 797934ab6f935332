"""S-softmax-bottleneck: a softmax over d-dimensional states cannot express high-rank distributions.

Three measurements: (1) the centred log-probability matrix of a trained tiny Transformer (hidden size d,
vocabulary v > d + 1) over many contexts has numerical rank <= d + 1 (energy rank with a tiny eps, from
neumo.spectral.ranks), while a table model (the character n-gram) on the same contexts is not limited;
(2) a softmax with d-dimensional free context vectors has a KL floor on a full-rank random target set, and a
mixture of softmaxes with the same d goes well below it; (3) exact parallelograms e_a + e_b = e_c + e_d
forbid ranking a, b above c, d for every state h (checked on random h), and - in the full preset - how
close SmolLM2's output embeddings come to king/queen/man/woman parallelograms.
"""

from __future__ import annotations

import numpy as np
import torch

from neumo.config import StrictModel
from neumo.studies.base import Study, StudyContext, Verdict, check, judge
from neumo.studies.registry import register_study


class BottleneckConfig(StrictModel):
    d_model: int = 16
    train_steps: int = 400
    n_contexts: int = 512
    rank_eps: float = 1e-10              # energy share treated as numerical noise
    target_contexts: int = 96
    target_vocab: int = 48
    target_d: int = 4
    target_scale: float = 3.0
    n_mix: int = 4
    fit_steps: int = 1500
    fit_lr: float = 0.05
    n_random_h: int = 20000
    smollm2_embeddings: bool = True
    min_softmax_floor: float = 0.02      # nats: the rank-limited softmax stays above this KL
    max_mos_ratio: float = 0.25          # MoS KL <= ratio * softmax KL


@register_study
class SoftmaxBottleneck(Study):
    id = "S-softmax-bottleneck"
    instrument = "detect"
    claim = ("A softmax LM with hidden size d has log-probability matrices of rank <= d+1, cannot fit a "
             "higher-rank target set (a KL floor), while a mixture of softmaxes with the same d fits it.")
    citation = "Yang et al. 2018 (Breaking the softmax bottleneck, ICLR)"
    Config = BottleneckConfig
    presets = {"quick": {"train_steps": 120, "n_contexts": 256, "fit_steps": 600, "smollm2_embeddings": False},
               "full": {}}

    def run(self, cfg: BottleneckConfig, ctx: StudyContext) -> Verdict:
        from neumo.detect.bottleneck import centred, fit_softmax, mos_targets, parallelogram_violations
        from neumo.spectral.ranks import energy_rank, stable_rank

        d = cfg.d_model
        tiny_lp, ngram_lp, v = _context_logprobs(cfg, ctx.seed)
        s_tiny = torch.linalg.svdvals(tiny_lp)
        s_tiny_c = torch.linalg.svdvals(centred(tiny_lp))
        s_ngram_c = torch.linalg.svdvals(centred(ngram_lp))
        r_tiny, r_tiny_c = energy_rank(s_tiny, cfg.rank_eps), energy_rank(s_tiny_c, cfg.rank_eps)
        r_ngram = energy_rank(s_ngram_c, cfg.rank_eps)

        target = mos_targets(cfg.target_contexts, cfg.target_vocab, cfg.target_d, cfg.n_mix, cfg.target_scale,
                             ctx.seed)
        r_target = energy_rank(torch.linalg.svdvals(centred(target)), cfg.rank_eps)
        kl_soft = fit_softmax(target, cfg.target_d, cfg.fit_steps, cfg.fit_lr, ctx.seed)
        kl_mos = fit_softmax(target, cfg.target_d, cfg.fit_steps, cfg.fit_lr, ctx.seed, n_mix=cfg.n_mix)

        g = torch.Generator().manual_seed(ctx.seed)
        e = torch.randn(4, d, generator=g, dtype=torch.float64)
        e[0] = e[2] + e[3] - e[1]                        # queen = king + woman - man
        h = torch.randn(cfg.n_random_h, d, generator=g, dtype=torch.float64)
        viol = parallelogram_violations(e, h)
        e_ctrl = e.clone()
        e_ctrl[0] += 0.5 * torch.randn(d, generator=g, dtype=torch.float64)
        viol_ctrl = parallelogram_violations(e_ctrl, h)
        measured = {"vocab": v, "d_model": d, "rank_logprob_tiny": r_tiny, "rank_centred_tiny": r_tiny_c,
                    "rank_centred_ngram": r_ngram, "stable_rank_centred_tiny": stable_rank(s_tiny_c),
                    "rank_centred_target": r_target, "kl_softmax": kl_soft, "kl_mos": kl_mos,
                    "parallelogram_violations_control": viol_ctrl}
        if cfg.smollm2_embeddings:
            measured.update(_smollm2_parallelograms(ctx.seed))
        ctx.save_figure("logprob_spectra", _figure(s_tiny_c, s_ngram_c, d))
        checks = [check("rank_logprob_tiny_minus_d_plus_1", r_tiny - (d + 1), "<=", 0),
                  check("kl_softmax_floor", kl_soft, ">=", cfg.min_softmax_floor),
                  check("kl_mos_over_softmax", kl_mos / kl_soft, "<=", cfg.max_mos_ratio),
                  check("parallelogram_violations", viol, "<=", 0.0)]
        summary = (f"tiny LM (d={d}, v={v}): log-prob rank {r_tiny:.0f} <= d+1={d + 1} (centred {r_tiny_c:.0f}); "
                   f"n-gram on the same contexts: centred rank {r_ngram:.0f}. Rank-{r_target:.0f} targets: "
                   f"softmax d={cfg.target_d} KL floor {kl_soft:.3f} nats, MoS(K={cfg.n_mix}) {kl_mos:.3f}. "
                   f"Exact parallelogram: {viol:.4f} of random h violate (control {viol_ctrl:.3f}).")
        if "smollm2_defect_king-queen" in measured:
            summary += (f" SmolLM2 output embeddings: |queen+man-king-woman| / mean norm = "
                        f"{measured['smollm2_defect_king-queen']:.2f} (random quadruples: median "
                        f"{measured['smollm2_defect_random_median']:.2f}); "
                        f"{measured['smollm2_violations_king-queen']:.1%} "
                        f"of random h rank queen and man above king and woman.")
        return judge(self.id, checks, summary=summary, measured=measured)


def _context_logprobs(cfg: BottleneckConfig, seed: int):
    """Log-prob rows of a trained tiny LM and of the n-gram over the same character contexts."""
    from neumo.data.text import human_documents
    from neumo.detect.lm import load_lm
    from neumo.detect.lm.tiny import train_tiny_on_text

    docs = human_documents("lee_background")
    tiny = train_tiny_on_text(docs, steps=cfg.train_steps, seed=seed, d_model=cfg.d_model, seq_len=32)
    ngram = load_lm("ngram")
    text = " ".join(docs[-20:])
    chunks = [text[s: s + 24] for s in range(0, cfg.n_contexts * 8, 8)]
    rows = []
    for lm in (tiny, ngram):
        ids = torch.tensor([[lm.bos_id] + lm.encode(c)[0] for c in chunks])           # (N, 25)
        rows.append(torch.log_softmax(lm.forward(ids, torch.ones_like(ids))[:, -1].double(), -1))
    rows_t, rows_n = rows
    return rows_t, rows_n, tiny.vocab_size


def _smollm2_parallelograms(seed: int) -> dict:
    from neumo.detect.bottleneck import parallelogram_defect as defect
    from neumo.detect.bottleneck import parallelogram_violations as violations
    from neumo.detect.lm import load_lm
    from neumo.errors import NeumoError

    try:
        lm = load_lm("smollm2")
    except NeumoError as e:
        return {"smollm2_skipped": str(e)}
    E = lm.output_embeddings().double()                                              # (V, d)
    quads = {"king-queen": [" queen", " man", " king", " woman"], "he-she": [" she", " his", " he", " her"]}
    out = {}
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(20000, E.shape[1], generator=g, dtype=torch.float64)
    for name, words in quads.items():
        ids = [lm.encode(w)[0] for w in words]
        if any(len(i) != 1 for i in ids):
            continue
        e = E[[i[0] for i in ids]]
        out[f"smollm2_defect_{name}"] = defect(e)
        out[f"smollm2_violations_{name}"] = violations(e, h)
    rand = torch.randint(0, E.shape[0], (500, 4), generator=g)
    out["smollm2_defect_random_median"] = float(np.median([defect(E[q]) for q in rand]))
    return out


def _figure(s_tiny, s_ngram, d):
    from neumo.report.figures import line_plot

    st, sn = s_tiny.numpy(), s_ngram.numpy()
    fig, ax = line_plot({"tiny Transformer": (np.arange(1, len(st) + 1), st / st[0]),
                         "character n-gram": (np.arange(1, len(sn) + 1), sn / sn[0])},
                        xlabel="index", ylabel="singular value / largest", logy=True,
                        title="centred log-prob matrix spectrum")
    ax.axvline(d + 1, color="grey", ls="--", lw=1)
    return fig


__all__ = ["BottleneckConfig", "SoftmaxBottleneck"]
