"""S-updates-low-rank: the update W_t - W_0 has far lower effective rank than W_0 or a random matrix.

Setup (pinned): (a) digits in [0, 1], MLP 64-256-256-10 ReLU, cross-entropy, Adam lr 1e-3, batch 64,
measured on the 256 x 256 hidden layer ``net.2.weight``; (b) character-level causal Transformer
(d_model 64, 2 layers, 4 heads, d_ff 256, learned positions) on the Lee news corpus shipped in gensim,
windows of 32, batch 16, Adam lr 3e-3, measured on ``blocks.0.mlp.0.weight`` (256 x 64). Ranks come
from the :class:`SpectralTracker` (W_0 and a Gaussian matrix of the same shape are its step-0 nulls).
Known to weaken when training runs long with a large learning rate (the update's stable rank creeps up)
and not to apply to layers that barely move (e.g. a frozen embedding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neumo.config import StrictModel
from neumo.data.digits import minibatches
from neumo.data.text import CharTokenizer, char_lm_batches, human_documents
from neumo.nn import build_model
from neumo.spectral.tracker import SpectralTracker
from neumo.studies.base import Study, StudyContext, Verdict, check, judge
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import cross_entropy, digits, digits_mlp
from neumo.train import Trainer


class UpdatesLowRankConfig(StrictModel):
    mlp_steps: int = 1500
    mlp_layer: str = "net.2.weight"
    tf_steps: int = 400
    tf_layer: str = "blocks.0.mlp.0.weight"
    seq_len: int = 32
    tf_batch: int = 16
    max_stable_ratio: float = 0.25    # sr(update) / sr(W_0) and / sr(random)
    max_entropy_ratio: float = 0.75   # er(update) / er(W_0)


def _train_tracked(model, loss_fn, batch_fn, steps, lr, layer, run_name):
    tr = SpectralTracker(modules=layer, schedule={"energy": 0, "ranks": steps, "inequality": 0, "rich_lag": 0},
                         run_name=run_name)
    Trainer(model, torch.optim.Adam(model.parameters(), lr=lr), loss_fn, batch_fn, steps, callbacks=[tr]).fit()
    df = tr.table()
    pick = lambda step, q, m: float(df[(df.step == step) & (df.quantity == q) & (df.metric == m)].value.iloc[0])  # noqa: E731
    return df, {(q, m): pick(steps if q == "update" else 0, q, m)
                for q in ("W", "W_random", "update") for m in ("stable_rank", "entropy_rank")}


@register_study
class UpdatesLowRank(Study):
    id = "S-updates-low-rank"
    instrument = "spectral"
    claim = ("The stable rank and entropy rank of a layer's update W_t - W_0 are far below those of W_0 and "
             "of a random matrix of the same shape, for an MLP on digits and a small Transformer on text.")
    citation = "Neural Matthew Effect essay; cf. Hu et al. (2021) LoRA; Huh et al. (2023) low-rank simplicity bias"
    Config = UpdatesLowRankConfig
    presets = {"quick": {"mlp_steps": 500, "tf_steps": 100}, "full": {}}

    def run(self, cfg: UpdatesLowRankConfig, ctx: StudyContext) -> Verdict:
        x, y, _ = digits(ctx.seed)
        mlp = digits_mlp(ctx.seed, [256, 256])
        df_m, mlp_r = _train_tracked(mlp, cross_entropy, minibatches(x, y, 64, ctx.seed), cfg.mlp_steps, 1e-3,
                                     cfg.mlp_layer, "mlp")
        text = " ".join(human_documents("lee_background"))
        tok = CharTokenizer.fit(text)
        tf = build_model("transformer", seed=ctx.seed, vocab_size=tok.vocab_size, d_model=64, n_layers=2, n_heads=4,
                         d_ff=256, max_len=cfg.seq_len)

        def lm_loss(m, batch):
            ids, tgt = batch
            return F.cross_entropy(m(ids).reshape(-1, tok.vocab_size), tgt.reshape(-1))

        df_t, tf_r = _train_tracked(tf, lm_loss, char_lm_batches(tok.encode(text), cfg.seq_len, cfg.tf_batch, ctx.seed),
                                    cfg.tf_steps, 3e-3, cfg.tf_layer, "transformer")
        import pandas as pd

        ctx.run.write_table("spectral", pd.concat([df_m, df_t], ignore_index=True))
        checks, measured = [], {}
        for name, r in (("mlp", mlp_r), ("transformer", tf_r)):
            checks += [check(f"{name}_stable_rank_update_over_W0", r["update", "stable_rank"] / r["W", "stable_rank"],
                             "<=", cfg.max_stable_ratio),
                       check(f"{name}_stable_rank_update_over_random",
                             r["update", "stable_rank"] / r["W_random", "stable_rank"], "<=", cfg.max_stable_ratio),
                       check(f"{name}_entropy_rank_update_over_W0",
                             r["update", "entropy_rank"] / r["W", "entropy_rank"], "<=", cfg.max_entropy_ratio)]
            measured.update({f"{name}_{q}_{m}": v for (q, m), v in r.items()})
        from neumo.report.figures import bar_plot

        fig, _ = bar_plot({f"{n} {q}": r[q, "stable_rank"] for n, r in (("MLP", mlp_r), ("TF", tf_r))
                           for q in ("W_random", "W", "update")}, ylabel="stable rank",
                          title="stable rank: random, W_0, update W_t - W_0")
        ctx.save_figure("stable_ranks", fig)
        return judge(self.id, checks, measured=measured, summary=(
            f"MLP {cfg.mlp_layer}: stable rank of update {mlp_r['update', 'stable_rank']:.2f} vs W_0 "
            f"{mlp_r['W', 'stable_rank']:.1f} vs random {mlp_r['W_random', 'stable_rank']:.1f}; Transformer "
            f"{cfg.tf_layer}: {tf_r['update', 'stable_rank']:.2f} vs {tf_r['W', 'stable_rank']:.1f} vs "
            f"{tf_r['W_random', 'stable_rank']:.1f}"))
