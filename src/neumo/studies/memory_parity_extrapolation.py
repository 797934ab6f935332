"""S-parity-extrapolation: a recurrent network runs the parity machine step by step and extrapolates; a
causal Transformer that has *learned* parity at its training length does not, with learned or sinusoidal
positions.

Setup: running parity (a target after every bit), training lengths 2..L, Adam, early stop once every
target of a held-out probe at L is right. The measured quantity is the accuracy of the parity of the
*whole* string (the last target) on fresh strings at L (in distribution) and at ``factor`` x L.

Each variant is judged on its own (no best-of): its accuracy at L is a precondition (>= 0.95, Deletang
et al. 2023 report in-distribution accuracy beside every extrapolation number), then

- the LSTM's accuracy at 4L must reach the claim's 0.99;
- each judged Transformer's *gap* (accuracy at L minus at 4L) must be >= 0.35: a model that learned
  parity at L (>= 0.95) and is near chance (<= 0.6) at 4L. An untrained model or a constant predictor
  has no gap, so neither can pass (they are the controls).

Nulls: ``untrained`` (the same models, seeds and test strings, zero training steps) and ``constant``
(inline: predict the training set's majority label everywhere).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from neumo.config import StrictModel
from neumo.memory.train import MemoryRunConfig
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.memory_common import constant_accuracy, curve_figure, curve_rows, train_variant, variant_values
from neumo.studies.registry import register_study
from neumo.train import TrainConfig


class ParityThresholds(Thresholds):
    min_acc_at_L: float = Field(
        0.95,
        description="competence gate of issue 9: a model counts only once it "
        "has learned parity at its training length (chance 0.5)",
    )
    min_rnn_acc: float = Field(
        0.99, description="the claim's number (Deletang et al. 2023: LSTMs solve parity at every tested length)"
    )
    min_transformer_gap: float = Field(
        0.35, description="gate 0.95 minus the old 'near chance' bound 0.6 (chance 0.5): learned at L, lost at 4L"
    )


class ParityExtrapolationConfig(StrictModel):
    train_max_len: int = Field(8, ge=2)
    factor: int = Field(4, ge=2)
    recurrent: str = "lstm"
    hidden_size: int = 48
    rnn_train: TrainConfig = TrainConfig(steps=1500, batch_size=64, lr=1e-2, eval_every=50)
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    transformer_train: TrainConfig = TrainConfig(steps=5000, batch_size=128, lr=1e-3, eval_every=100)
    positions: list[str] = ["learned", "sinusoidal"]
    target_acc: float = Field(1.0, gt=0, le=1, description="early stop once the probe's seq_acc reaches it")
    eval_size: int = 512
    thresholds: ParityThresholds = ParityThresholds()


@register_study
class ParityExtrapolation(Study):
    id = "S-parity-extrapolation"
    instrument = "memory"
    claim = (
        "Trained on parity strings of length <= L, a 1-layer LSTM is >= 99% accurate at 4L, while a causal "
        "Transformer that has learned parity at L (>= 95%) falls to near chance at 4L with learned or "
        "sinusoidal positions."
    )
    citation = "Deletang et al. (2023) ICLR 'Neural Networks and the Chomsky Hierarchy'; Hahn (2020) TACL"
    Config = ParityExtrapolationConfig
    presets = {
        "quick": {"rnn_train": {"steps": 400}, "transformer_train": {"steps": 700}, "eval_size": 256},
        "full": {},
    }
    nulls = {
        "untrained": "the same models, seeds and test strings with zero training steps",
        "constant": "always predict the majority whole-string label of the training strings (inline)",
    }
    replication = (
        "the seed sets each model's initialisation, the training strings and their order, and the test strings"
    )
    quick_cost_s = 45.0

    def checks(self, cfg):
        out = [
            CheckSpec(
                f"{cfg.recurrent}_acc_at_{cfg.factor}L",
                f"{cfg.recurrent}_acc_at_far",
                ">=",
                "min_rnn_acc",
                controls=("untrained", "constant"),
                label=f"{cfg.recurrent} whole-string accuracy at {cfg.factor}L",
            )
        ]
        for pos in cfg.positions:
            out.append(
                CheckSpec(
                    f"transformer_{pos}_gap",
                    f"transformer_{pos}_gap",
                    ">=",
                    "min_transformer_gap",
                    controls=("untrained", "constant"),
                    label=f"Transformer ({pos}) accuracy at L minus at {cfg.factor}L",
                )
            )
        return out

    def preconditions(self, cfg):
        names = [cfg.recurrent] + [f"transformer_{p}" for p in cfg.positions]
        return [
            GateSpec(
                f"{n}_acc_at_L",
                f"{n}_acc_at_L",
                ">=",
                "min_acc_at_L",
                why=f"{n} must learn parity at the training length before its extrapolation counts",
            )
            for n in names
        ]

    def measure(self, cfg: ParityExtrapolationConfig, ctx: StudyContext) -> Measurement:
        L, far = cfg.train_max_len, cfg.factor * cfg.train_max_len
        lengths = sorted({L // 2, L, 2 * L, far})
        base = dict(
            task="parity",
            train_lengths=list(range(2, L + 1)),
            eval_lengths=lengths,
            eval_size=cfg.eval_size,
            target_acc=cfg.target_acc,
            stop_metric="seq_acc",
            seed=ctx.seed,
        )
        runs = {
            cfg.recurrent: MemoryRunConfig(
                model=cfg.recurrent, model_knobs={"hidden_size": cfg.hidden_size}, train=cfg.rnn_train, **base
            )
        }
        for pos in cfg.positions:
            runs[f"transformer_{pos}"] = MemoryRunConfig(
                model="transformer",
                train=cfg.transformer_train,
                model_knobs=dict(d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, pos=pos),
                **base,
            )
        untrained = ctx.arm == "untrained"
        values: dict[str, float] = {}
        rows: list[dict[str, Any]] = []
        table = []
        for name, rc in runs.items():
            res = train_variant(rc, untrained, ctx.progress)
            acc = {Lx: m["final_acc"] for Lx, m in res.eval.items()}
            values |= variant_values(name, acc, L, far)
            values[f"{name}_steps"] = float(res.steps)
            rows += curve_rows(name, res)
            table.append(
                {
                    "model": name,
                    "n_params": res.model.num_parameters(),
                    "steps": res.steps,
                    "acc_at_L": acc[L],
                    f"acc_at_{cfg.factor}L": acc[far],
                }
            )
        nulls = {}
        if ctx.arm == "treatment":
            const = constant_accuracy(next(iter(runs.values())), [L, far])
            nulls["constant"] = {k: v for name in runs for k, v in variant_values(name, const, L, far).items()}
            if ctx.keep_figures:
                ctx.save_figure(
                    "parity_extrapolation",
                    curve_figure(rows, "final_acc", title=f"parity, trained on length <= {L}", train_max=L, chance=0.5),
                )
        import pandas as pd

        ctx.run.write_table("extrapolation", pd.DataFrame(rows))
        return Measurement(values=values, nulls=nulls, tables={"parity_extrapolation": table})

    def summarize(self, cfg, m):
        names = [cfg.recurrent] + [f"transformer_{p}" for p in cfg.positions]
        nan = float("nan")
        return (
            f"whole-string parity accuracy at L={cfg.train_max_len} -> {cfg.factor}L (seed means): "
            + ", ".join(f"{n} {m.get(f'{n}_acc_at_L', nan):.3f} -> {m.get(f'{n}_acc_at_far', nan):.3f}" for n in names)
            + f"; untrained {cfg.recurrent} {m.get(f'untrained:{cfg.recurrent}_acc_at_far', nan):.3f} at "
            f"{cfg.factor}L"
        )


__all__ = ["ParityExtrapolation", "ParityExtrapolationConfig", "constant_accuracy", "train_variant", "variant_values"]
