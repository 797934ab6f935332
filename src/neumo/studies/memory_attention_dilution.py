"""S-attention-dilution: as sequences grow, a trained Transformer's attention spreads over more keys
(higher entropy) and its accuracy falls; across test lengths the two are negatively correlated.

Setup: flip-flop language (Liu et al. 2023: write / ignore / read, the read must return the last
written bit), a causal Transformer without position encoding (so that no untrained position is the
cause), trained on length L, tested at L..8L. Entropy is the mean over layers, heads, sequences and
query positions of the attention row entropy (nats); uniform attention over t+1 keys would give log(t+1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neumo.config import StrictModel
from neumo.memory.probes import entropy_by_length
from neumo.memory.train import MemoryRunConfig, train_on_task
from neumo.studies.base import Study, StudyContext, Verdict, check, judge
from neumo.studies.registry import register_study
from neumo.train import TrainConfig


class AttentionDilutionConfig(StrictModel):
    train_len: int = 32
    test_factors: list[int] = [1, 2, 4, 8]
    p_ignore: float = 0.8
    pos: str = "none"
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 2
    train: TrainConfig = TrainConfig(steps=1000, batch_size=64, lr=3e-3, eval_every=100)
    eval_size: int = 256
    min_train_acc: float = 0.9
    min_entropy_increase: float = 0.3     # nats, longest vs training length
    max_correlation: float = -0.7         # Pearson(entropy, accuracy) across test lengths


@register_study
class AttentionDilution(Study):
    id = "S-attention-dilution"
    instrument = "memory"
    claim = ("The attention entropy of a trained Transformer grows with sequence length and is negatively "
             "correlated with its accuracy beyond the training length (attention dilution).")
    citation = "Liu et al. (2023) NeurIPS 'Exposing Attention Glitches with Flip-Flop Language Modeling'; " \
               "Chiang & Cholak (2022) ACL"
    Config = AttentionDilutionConfig
    presets = {"quick": {"train": {"steps": 250, "eval_every": 50}, "eval_size": 128}, "full": {}}

    def run(self, cfg: AttentionDilutionConfig, ctx: StudyContext) -> Verdict:
        lengths = [cfg.train_len * f for f in cfg.test_factors]
        res = train_on_task(MemoryRunConfig(
            task="flipflop", task_knobs={"length": cfg.train_len, "p_ignore": cfg.p_ignore}, model="transformer",
            model_knobs=dict(d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, pos=cfg.pos),
            train=cfg.train, eval_lengths=lengths, eval_size=cfg.eval_size, target_acc=1.0, seed=ctx.seed),
            progress=ctx.progress)
        ent = entropy_by_length(res.model, res.task, lengths, ctx.seed, n=cfg.eval_size, last_only=False)
        acc = [res.eval[L]["acc"] for L in lengths]
        h = [ent[L] for L in lengths]
        corr = float(np.corrcoef(h, acc)[0, 1]) if np.std(acc) > 0 and np.std(h) > 0 else 0.0
        rows = [{"length": L, "acc": a, "entropy": e, "uniform_entropy": float(np.log(np.arange(1, L + 1)).mean())}
                for L, a, e in zip(lengths, acc, h)]
        ctx.run.write_table("dilution", pd.DataFrame(rows))
        ctx.save_figure("attention_dilution", _figure(rows, cfg.train_len))
        v = judge(self.id, [check("acc_at_train_len", acc[0], ">=", cfg.min_train_acc),
                            check("entropy_increase", h[-1] - h[0], ">=", cfg.min_entropy_increase),
                            check("corr_entropy_accuracy", corr, "<=", cfg.max_correlation)],
                  summary=", ".join(f"length {r['length']}: acc {r['acc']:.3f}, entropy {r['entropy']:.2f} nats"
                                    for r in rows) + f"; Pearson r = {corr:.2f}",
                  measured={"acc_drop": acc[0] - acc[-1]})
        v.tables["dilution"] = rows
        return v


def _figure(rows, train_len):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    L = [r["length"] for r in rows]
    ax.plot(L, [r["entropy"] for r in rows], "o-", label="attention entropy (trained)")
    ax.plot(L, [r["uniform_entropy"] for r in rows], "--", color="gray", label="uniform attention")
    ax.set(xscale="log", xlabel="sequence length", ylabel="entropy (nats)", title="attention dilution")
    ax2 = ax.twinx()
    ax2.plot(L, [r["acc"] for r in rows], "s-", color="C3", label="accuracy")
    ax2.set_ylabel("read accuracy")
    ax.axvline(train_len, ls=":", color="gray")
    fig.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 0.88))
    fig.tight_layout()
    return fig


__all__ = ["AttentionDilution", "AttentionDilutionConfig"]
