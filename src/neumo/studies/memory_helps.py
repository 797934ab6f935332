"""S-memory-helps: on parity, where a plain Transformer that learned its training length fails to
extrapolate, writing the intermediate states down (a scratchpad) or carrying them in memory tokens raises
out-of-length accuracy.

Three models, same training lengths (2..L) and step budget, judged on whole-string parity at 4L:
- plain: a causal Transformer on running-parity labels;
- scratchpad: the same Transformer on ``x1 s1 x2 s2 ...`` where each state token is supervised and, at
  test time, is the model's own previous prediction (greedy rollout, no teacher forcing);
- memory tokens: an RMT-style Transformer (segments of ``segment_len`` >= 8 tokens, ``n_mem`` memory
  tokens); with L = 16 a training string spans up to two segments, so the memory is trained.
ALiBi's recency bias (8 heads, slopes 1/2 ... 1/256) makes "read the previous state token" the same
computation at every length, which is what the scratchpad needs.

Each variant is judged on its own (no best-of-two): every model must reach >= 0.95 whole-string accuracy
at L (precondition); the plain model's gap (at L minus at 4L) must be >= 0.35 (the premise: it learned
and does not extrapolate); each augmented model's gain over plain at 4L must be >= 0.3. Controls: the
untrained models and the constant predictor (no gap, no gain).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import Field

from neumo.config import StrictModel
from neumo.memory.train import MemoryRunConfig
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.memory_common import constant_accuracy, curve_figure, curve_rows, train_variant, variant_values
from neumo.studies.registry import register_study
from neumo.train import TrainConfig


class MemoryHelpsThresholds(Thresholds):
    min_acc_at_L: float = Field(
        0.95,
        description="competence gate of issue 9: every model, plain and "
        "augmented, has learned parity at the training length",
    )
    min_plain_gap: float = Field(
        0.35, description="the premise: plain learned at L (>= 0.95) and is near chance (<= 0.6) at 4L"
    )
    min_gain: float = Field(
        0.3, description="the old pre-registered gain at 4L (chance 0.5: from near chance to >= 0.8)"
    )


class MemoryHelpsConfig(StrictModel):
    train_max_len: int = Field(16, ge=2)
    factor: int = Field(4, ge=2)
    d_model: int = 32
    n_heads: int = 8
    n_layers: int = 1
    pos: str = "alibi"
    train: TrainConfig = TrainConfig(steps=3000, batch_size=64, lr=3e-3, eval_every=50)
    memory_tokens: bool = True
    n_mem: int = 2
    segment_len: int = Field(8, ge=8, description="issue 9: memory tokens with segments of at least 8 tokens")
    target_acc: float = Field(1.0, gt=0, le=1, description="early stop once the probe's seq_acc reaches it")
    eval_size: int = 256
    thresholds: MemoryHelpsThresholds = MemoryHelpsThresholds()


def _variants(cfg: MemoryHelpsConfig) -> list[str]:
    return ["plain", "scratchpad"] + (["memory_tokens"] if cfg.memory_tokens else [])


@register_study
class MemoryHelps(Study):
    id = "S-memory-helps"
    instrument = "memory"
    claim = (
        "Where a plain Transformer that learned parity at its training length fails to extrapolate it, "
        "a scratchpad and memory tokens each raise its out-of-length accuracy."
    )
    citation = "Nye et al. (2021) 'Show Your Work'; Bulatov et al. (2022) NeurIPS 'Recurrent Memory Transformer'"
    Config = MemoryHelpsConfig
    presets = {"quick": {"eval_size": 128, "train": {"steps": 500}}, "full": {}}
    nulls = {
        "untrained": "the same three models, seeds and test strings with zero training steps",
        "constant": "always predict the majority whole-string label of the training strings (inline)",
    }
    replication = (
        "the seed sets each model's initialisation, the training strings and their order, and the test strings"
    )
    quick_cost_s = 71.0

    def checks(self, cfg):
        ctl = ("untrained", "constant")
        out = [
            CheckSpec(
                "plain_gap",
                "plain_gap",
                ">=",
                "min_plain_gap",
                controls=ctl,
                label=f"plain Transformer accuracy at L minus at {cfg.factor}L",
            )
        ]
        out += [
            CheckSpec(
                f"{v}_gain",
                f"{v}_gain",
                ">=",
                "min_gain",
                controls=ctl,
                label=f"{v} minus plain, accuracy at {cfg.factor}L",
            )
            for v in _variants(cfg)[1:]
        ]
        return out

    def preconditions(self, cfg):
        return [
            GateSpec(
                f"{v}_acc_at_L",
                f"{v}_acc_at_L",
                ">=",
                "min_acc_at_L",
                why=f"{v} must learn parity at the training length before its extrapolation counts",
            )
            for v in _variants(cfg)
        ]

    def measure(self, cfg: MemoryHelpsConfig, ctx: StudyContext) -> Measurement:
        L, far = cfg.train_max_len, cfg.factor * cfg.train_max_len
        tr = dict(d_model=cfg.d_model, n_heads=cfg.n_heads, n_layers=cfg.n_layers, pos=cfg.pos)
        base = dict(
            task="parity",
            train=cfg.train,
            train_lengths=list(range(2, L + 1)),
            eval_lengths=sorted({L, 2 * L, far}),
            eval_size=cfg.eval_size,
            target_acc=cfg.target_acc,
            stop_metric="seq_acc",
            seed=ctx.seed,
        )
        runs = {
            "plain": MemoryRunConfig(model="transformer", model_knobs=tr, **base),
            "scratchpad": MemoryRunConfig(model="transformer", model_knobs=tr, task_knobs={"scratchpad": True}, **base),
        }
        if cfg.memory_tokens:
            runs["memory_tokens"] = MemoryRunConfig(
                model="memory_transformer", model_knobs=dict(tr, n_mem=cfg.n_mem, segment_len=cfg.segment_len), **base
            )
        values: dict[str, float] = {}
        rows: list[dict[str, Any]] = []
        table = []
        for name, rc in runs.items():
            res = train_variant(rc, ctx.arm == "untrained", ctx.progress)
            acc = {Lx: m["final_acc"] for Lx, m in res.eval.items()}
            values |= variant_values(name, acc, L, far)
            values[f"{name}_steps"] = float(res.steps)
            rows += curve_rows(name, res)
            table.append({"variant": name, "steps": res.steps, "acc_at_L": acc[L], f"acc_at_{cfg.factor}L": acc[far]})
        add_gains(values, list(runs))
        nulls = {}
        if ctx.arm == "treatment":
            const = constant_accuracy(runs["plain"], [L, far])
            cv: dict[str, float] = {}
            for name in runs:
                cv |= variant_values(name, const, L, far)
            nulls["constant"] = add_gains(cv, list(runs))
            if ctx.keep_figures:
                ctx.save_figure(
                    "memory_helps",
                    curve_figure(
                        rows,
                        "final_acc",
                        title=f"parity, trained <= {L} bits",
                        xlabel="test length (bits)",
                        train_max=L,
                        chance=0.5,
                    ),
                )
        ctx.run.write_table("memory_helps", pd.DataFrame(rows))
        return Measurement(values=values, nulls=nulls, tables={"memory_helps": table})

    def summarize(self, cfg, m):
        nan = float("nan")
        return f"whole-string parity accuracy at L={cfg.train_max_len} -> {cfg.factor}L (seed means): " + ", ".join(
            f"{v} {m.get(f'{v}_acc_at_L', nan):.3f} -> {m.get(f'{v}_acc_at_far', nan):.3f}" for v in _variants(cfg)
        )


def add_gains(values: dict[str, float], names: list[str]) -> dict[str, float]:
    """``<variant>_gain`` = its accuracy at the far length minus the plain model's (in place)."""
    for n in names[1:]:
        values[f"{n}_gain"] = values[f"{n}_acc_at_far"] - values["plain_acc_at_far"]
    return values


__all__ = ["MemoryHelps", "MemoryHelpsConfig", "add_gains"]
