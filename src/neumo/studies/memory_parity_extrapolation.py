"""S-parity-extrapolation: recurrent networks run the parity machine step by step and extrapolate; a
causal Transformer trained on the same short strings does not, for learned or sinusoidal positions.

Setup: running parity (a target after every bit), training lengths 2..L (L = 16 quick, 40 full), Adam.
The measured quantity is the accuracy of the parity of the *whole* string (the last target) at 4L.
"""

from __future__ import annotations

from neumo.config import StrictModel
from neumo.memory.train import MemoryRunConfig, train_on_task
from neumo.studies.base import Study, StudyContext, Verdict, check, judge
from neumo.studies.memory_common import curve_figure, curve_rows
from neumo.studies.registry import register_study
from neumo.train import TrainConfig


class ParityExtrapolationConfig(StrictModel):
    train_max_len: int = 40
    factor: int = 4
    recurrent: str = "lstm"
    hidden_size: int = 48
    rnn_train: TrainConfig = TrainConfig(steps=1500, batch_size=64, lr=1e-2, eval_every=50)
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 2
    transformer_train: TrainConfig = TrainConfig(steps=1500, batch_size=64, lr=3e-3, eval_every=100)
    positions: list[str] = ["learned", "sinusoidal", "rope", "alibi", "none"]
    judged_positions: list[str] = ["learned", "sinusoidal"]
    eval_size: int = 512
    min_rnn_acc: float = 0.99
    max_transformer_acc: float = 0.6      # chance is 0.5


@register_study
class ParityExtrapolation(Study):
    id = "S-parity-extrapolation"
    instrument = "memory"
    claim = ("Trained on parity strings of length <= L, a 1-layer LSTM is >= 99% accurate at 4L, while a causal "
             "Transformer of similar size stays near chance beyond L with learned or sinusoidal positions.")
    citation = "Deletang et al. (2023) ICLR 'Neural Networks and the Chomsky Hierarchy'; Hahn (2020) TACL"
    Config = ParityExtrapolationConfig
    presets = {"quick": {"train_max_len": 16, "rnn_train": {"steps": 400}, "transformer_train": {"steps": 200}},
               "full": {}}

    def run(self, cfg: ParityExtrapolationConfig, ctx: StudyContext) -> Verdict:
        L = cfg.train_max_len
        lengths = sorted({L // 2, L, 2 * L, cfg.factor * L})
        base = dict(task="parity", train_lengths=list(range(2, L + 1)), eval_lengths=lengths,
                    eval_size=cfg.eval_size, target_acc=1.0, seed=ctx.seed)
        rnn = train_on_task(MemoryRunConfig(model=cfg.recurrent, model_knobs={"hidden_size": cfg.hidden_size},
                                            train=cfg.rnn_train, **base), progress=ctx.progress)
        rows = curve_rows(cfg.recurrent, rnn)
        far = cfg.factor * L
        checks = [check(f"{cfg.recurrent}_acc_at_{cfg.factor}x", rnn.eval[far]["final_acc"], ">=", cfg.min_rnn_acc)]
        table = [{"model": cfg.recurrent, "n_params": rnn.model.num_parameters(),
                  "acc_at_L": rnn.eval[L]["final_acc"], f"acc_at_{cfg.factor}L": rnn.eval[far]["final_acc"]}]
        for pos in cfg.positions:
            tr = train_on_task(MemoryRunConfig(model="transformer", train=cfg.transformer_train, model_knobs=dict(
                d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, pos=pos), **base),
                progress=ctx.progress)
            rows += curve_rows(f"transformer-{pos}", tr)
            table.append({"model": f"transformer-{pos}", "n_params": tr.model.num_parameters(),
                          "acc_at_L": tr.eval[L]["final_acc"], f"acc_at_{cfg.factor}L": tr.eval[far]["final_acc"]})
            if pos in cfg.judged_positions:
                checks.append(check(f"transformer_{pos}_acc_at_{cfg.factor}x", tr.eval[far]["final_acc"], "<=",
                                    cfg.max_transformer_acc))
        import pandas as pd

        ctx.run.write_table("extrapolation", pd.DataFrame(rows))
        ctx.save_figure("parity_extrapolation", curve_figure(
            rows, "final_acc", title=f"parity, trained on length <= {L}", train_max=L, chance=0.5))
        changed = [r["model"] for r in table[1:] if r[f"acc_at_{cfg.factor}L"] > cfg.max_transformer_acc]
        v = judge(self.id, checks, summary=(
            f"whole-string parity accuracy at {far} (trained <= {L}): " +
            ", ".join(f"{r['model']} {r[f'acc_at_{cfg.factor}L']:.3f} (at L {r['acc_at_L']:.3f})" for r in table) +
            f". Encodings above {cfg.max_transformer_acc} out of length: {changed or 'none'}."),
            measured={"params": {r["model"]: r["n_params"] for r in table}, "positions_that_extrapolate": changed,
                      "acc_out_of_length": {r["model"]: r[f"acc_at_{cfg.factor}L"] for r in table}})
        v.tables["parity_extrapolation"] = table
        return v


__all__ = ["ParityExtrapolation", "ParityExtrapolationConfig"]
