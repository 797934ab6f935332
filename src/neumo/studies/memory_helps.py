"""S-memory-helps: on parity, where a plain Transformer fails to extrapolate, writing the intermediate
states down (a scratchpad) or carrying them in memory tokens raises out-of-length accuracy.

Three models, same training lengths (2..L) and step budget, judged on whole-string parity at 4L:
- plain: a causal Transformer on running-parity labels;
- scratchpad: the same Transformer on ``x1 s1 x2 s2 ...`` where each state token is supervised and, at
  test time, is the model's own previous prediction (greedy rollout, no teacher forcing);
- memory tokens: an RMT-style Transformer (segments of ``segment_len`` tokens, ``n_mem`` memory tokens).
ALiBi's recency bias (8 heads, slopes 1/2 ... 1/256) makes "read the previous state token" the same
computation at every length, which is what the scratchpad needs.
"""

from __future__ import annotations

import pandas as pd

from neumo.config import StrictModel
from neumo.memory.train import MemoryRunConfig, train_on_task
from neumo.studies.base import Study, StudyContext, Verdict, check, judge
from neumo.studies.memory_common import curve_figure, curve_rows
from neumo.studies.registry import register_study
from neumo.train import TrainConfig


class MemoryHelpsConfig(StrictModel):
    train_max_len: int = 16
    factor: int = 4
    d_model: int = 32
    n_heads: int = 8
    n_layers: int = 1
    pos: str = "alibi"
    train: TrainConfig = TrainConfig(steps=1500, batch_size=64, lr=3e-3, eval_every=50)
    memory_tokens: bool = True
    n_mem: int = 1
    segment_len: int = 2
    eval_size: int = 256
    min_gain: float = 0.3              # best of (scratchpad, memory tokens) minus plain, at factor x L


@register_study
class MemoryHelps(Study):
    id = "S-memory-helps"
    instrument = "memory"
    claim = ("Where a plain Transformer fails to extrapolate parity beyond its training length, a scratchpad "
             "or memory tokens raise its out-of-length accuracy.")
    citation = "Nye et al. (2021) 'Show Your Work'; Bulatov et al. (2022) NeurIPS 'Recurrent Memory Transformer'"
    Config = MemoryHelpsConfig
    presets = {"quick": {"eval_size": 128, "train": {"steps": 300}}, "full": {}}

    def run(self, cfg: MemoryHelpsConfig, ctx: StudyContext) -> Verdict:
        L, far = cfg.train_max_len, cfg.factor * cfg.train_max_len
        tr = dict(d_model=cfg.d_model, n_heads=cfg.n_heads, n_layers=cfg.n_layers, pos=cfg.pos)
        base = dict(task="parity", train=cfg.train, train_lengths=list(range(2, L + 1)),
                    eval_lengths=sorted({L, 2 * L, far}), eval_size=cfg.eval_size, target_acc=1.0,
                    stop_metric="seq_acc", seed=ctx.seed)
        variants = {"plain": MemoryRunConfig(model="transformer", model_knobs=tr, **base),
                    "scratchpad": MemoryRunConfig(model="transformer", model_knobs=tr,
                                                  task_knobs={"scratchpad": True}, **base)}
        if cfg.memory_tokens:
            variants["memory_tokens"] = MemoryRunConfig(model="memory_transformer", model_knobs=dict(
                tr, n_mem=cfg.n_mem, segment_len=cfg.segment_len), **base)
        rows, acc = [], {}
        for name, rc in variants.items():
            res = train_on_task(rc, progress=ctx.progress)
            rows += curve_rows(name, res)
            acc[name] = {"in_length": res.eval[L]["final_acc"], "out_of_length": res.eval[far]["final_acc"],
                         "steps": res.steps}
        ctx.run.write_table("memory_helps", pd.DataFrame(rows))
        ctx.save_figure("memory_helps", curve_figure(rows, "final_acc", title=f"parity, trained <= {L} bits",
                                                     xlabel="test length (bits)", train_max=L, chance=0.5))
        plain = acc["plain"]["out_of_length"]
        gains = {k: v["out_of_length"] - plain for k, v in acc.items() if k != "plain"}
        best = max(gains, key=gains.get)
        v = judge(self.id, [check("best_out_of_length_gain", gains[best], ">=", cfg.min_gain)],
                  summary=(f"whole-string parity accuracy at {far} bits (trained <= {L}): " + ", ".join(
                      f"{k} {a['out_of_length']:.3f} (at {L}: {a['in_length']:.3f})" for k, a in acc.items())
                      + f"; best: {best} (+{gains[best]:.3f})"),
                  measured={f"gain_{k}": g for k, g in gains.items()} | {
                      f"acc_{k}_out_of_length": a["out_of_length"] for k, a in acc.items()})
        v.tables["memory_helps"] = [{"variant": k, **a} for k, a in acc.items()]
        return v


__all__ = ["MemoryHelps", "MemoryHelpsConfig"]
