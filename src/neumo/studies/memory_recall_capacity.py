"""S-recall-capacity: attention solves multi-query associative recall at every tested size, while a
recurrent model needs a state that grows with the number of key-value pairs (Zoology).

Setup: MQAR with ``n_pairs`` pairs followed by ``n_pairs`` queries, keys and values from small
vocabularies. By default each pair is one token (``fused_pairs``): this removes the previous-token
circuit a Transformer otherwise needs (whose formation takes thousands of steps, out of a CPU budget)
and leaves the memory demand unchanged: P values of log2(n_values) bits must be held until queried.
A causal Transformer without positions (its KV cache grows with the input) and an LSTM at several
hidden sizes (fixed state 2 * hidden) are trained under the same step budget.
"""

from __future__ import annotations

import pandas as pd

from neumo.config import StrictModel
from neumo.memory.train import MemoryRunConfig, train_on_task
from neumo.studies.base import Study, StudyContext, Verdict, check, judge
from neumo.studies.registry import register_study
from neumo.train import TrainConfig


class RecallCapacityConfig(StrictModel):
    n_pairs: list[int] = [2, 4, 8, 16]
    n_keys: int = 16
    n_values: int = 16
    fused_pairs: bool = True
    recurrent: str = "lstm"
    hidden_sizes: list[int] = [8, 32, 128]
    rnn_train: TrainConfig = TrainConfig(steps=1500, batch_size=64, lr=1e-2, eval_every=50)
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 1
    transformer_train: TrainConfig = TrainConfig(steps=1500, batch_size=64, lr=3e-3, eval_every=50)
    eval_size: int = 256
    solved_acc: float = 0.9            # "solves it"
    min_attention_acc: float = 0.9     # attention must solve every size
    min_small_state_drop: float = 0.2  # smallest state: acc(fewest pairs) - acc(most pairs)
    min_state_gain: float = 0.2        # most pairs: acc(largest state) - acc(smallest state)


def state_needed(rows: list[dict], P: int, solved: float) -> float | None:
    ok = [r["state_size"] for r in rows if r["n_pairs"] == P and r["acc"] >= solved]
    return float(min(ok)) if ok else None


@register_study
class RecallCapacity(Study):
    id = "S-recall-capacity"
    instrument = "memory"
    claim = ("On multi-query associative recall, attention solves every tested number of pairs, while a "
             "recurrent model needs a state size that grows with the number of pairs.")
    citation = "Arora et al. (2023) 'Zoology: Measuring and Improving Recall in Efficient Language Models'"
    Config = RecallCapacityConfig
    presets = {"quick": {"n_pairs": [2, 8], "n_keys": 8, "n_values": 8, "hidden_sizes": [16, 64],
                         "rnn_train": {"steps": 300}, "transformer_train": {"steps": 300}},
               "full": {}}

    def run(self, cfg: RecallCapacityConfig, ctx: StudyContext) -> Verdict:
        rows = []
        for P in cfg.n_pairs:
            width = 1 if cfg.fused_pairs else 2
            base = dict(task="mqar", task_knobs={"n_pairs": P, "seq_len": (width + 1) * P, "n_keys": cfg.n_keys,
                                                 "n_values": cfg.n_values, "fused_pairs": cfg.fused_pairs},
                        eval_size=cfg.eval_size, target_acc=0.99, seed=ctx.seed)
            specs = [("transformer", {"d_model": cfg.d_model, "n_heads": cfg.n_heads, "n_layers": cfg.n_layers,
                                      "pos": "none" if cfg.fused_pairs else "learned"}, cfg.transformer_train)]
            specs += [(cfg.recurrent, {"hidden_size": h}, cfg.rnn_train) for h in cfg.hidden_sizes]
            for model, knobs, train in specs:
                res = train_on_task(MemoryRunConfig(model=model, model_knobs=knobs, train=train, **base),
                                    progress=ctx.progress)
                L = max(res.eval)
                rows.append({"model": model if model == "transformer" else f"{model}-{knobs['hidden_size']}",
                             "arch": "attention" if model == "transformer" else "recurrent", "n_pairs": P,
                             "state_size": res.model.state_size(L), "acc": res.eval[L]["acc"], "steps": res.steps})
        ctx.run.write_table("capacity", pd.DataFrame(rows))
        ctx.save_figure("recall_capacity", _figure(rows))
        att = min(r["acc"] for r in rows if r["arch"] == "attention")
        rec = [r for r in rows if r["arch"] == "recurrent"]
        need = {P: state_needed(rec, P, cfg.solved_acc) for P in cfg.n_pairs}
        acc = {(r["n_pairs"], r["state_size"]): r["acc"] for r in rec}
        s_lo, s_hi = min(r["state_size"] for r in rec), max(r["state_size"] for r in rec)
        p_lo, p_hi = cfg.n_pairs[0], cfg.n_pairs[-1]
        v = judge(self.id, [check("attention_min_acc", att, ">=", cfg.min_attention_acc),
                            check("small_state_acc_drop", acc[p_lo, s_lo] - acc[p_hi, s_lo], ">=",
                                  cfg.min_small_state_drop),
                            check("state_gain_at_most_pairs", acc[p_hi, s_hi] - acc[p_hi, s_lo], ">=",
                                  cfg.min_state_gain)],
                  summary=(f"attention accuracy >= {att:.3f} at every size; recurrent state needed for "
                           f"acc >= {cfg.solved_acc}: " + ", ".join(
                               f"{P} pairs -> {'none tested' if n is None else int(n)}" for P, n in need.items())
                           + "; " + ", ".join(f"{r['model']}@{r['n_pairs']}: {r['acc']:.2f}" for r in rows)),
                  measured={"state_needed": {str(P): n for P, n in need.items()}})
        v.tables["recall_capacity"] = rows
        return v


def _figure(rows):
    from neumo.report.figures import line_plot

    series = {}
    for r in sorted(rows, key=lambda r: r["state_size"]):
        if r["arch"] == "recurrent":
            xs, ys = series.setdefault(f"recurrent, {r['n_pairs']} pairs", ([], []))
            xs.append(r["state_size"])
            ys.append(r["acc"])
    for r in rows:
        if r["arch"] == "attention":
            series[f"attention, {r['n_pairs']} pairs"] = ([r["state_size"]], [r["acc"]])
    fig, _ = line_plot(series, xlabel="state size (floats)", ylabel="MQAR accuracy", logx=True,
                       title="recall vs state size")
    return fig


__all__ = ["RecallCapacity", "RecallCapacityConfig"]
