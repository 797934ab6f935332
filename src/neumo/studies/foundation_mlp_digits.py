"""F-mlp-digits: the end-to-end study of the foundation, and the template of the study contract.

Setup (pinned): scikit-learn digits scaled to [0, 1], an 80/20 seeded split, MLP 64-256-256-10 with ReLU,
cross-entropy, Adam (lr 1e-3), batch 64. The claim concerns the first layer (256 x 64) and its update
ΔW = W_t - W_0. "Low rank" is judged against two nulls, per seed:

- ``shuffled_labels``: the same training (same init, same batches) on permuted labels: whatever the
  optimiser and the inputs alone make of the update;
- ``random_walk`` (inline): random per-example error signals on the same input batches, rescaled to
  ‖ΔW‖_F (:func:`neumo.spectral.nulls.random_walk_update`): what the input statistics alone impose.

A seed changes the initialisation, the train/test split and the batch order (and the label permutation).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
import torch.nn.functional as F
from pydantic import Field, model_validator

from neumo.config import StrictModel
from neumo.data.digits import load_digits_split, minibatches
from neumo.errors import NeumoError
from neumo.nn import build_model
from neumo.nn.mlp import MLP
from neumo.spectral.nulls import random_walk_update, shuffled_labels
from neumo.spectral.ranks import matrix_ranks
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.train import Trainer, TrainConfig, make_optimizer


class MLPDigitsThresholds(Thresholds):
    min_test_acc: float = Field(0.95, description="the claim's own number (>95% test accuracy on digits)")
    min_train_acc: float = Field(0.95, description="competence gate: the network has fitted its training set")
    max_rank_ratio: float = Field(
        0.5,
        description="'far below' = at most half the null's stable rank "
        "(a principled factor, fixed before the nulls were run)",
    )


class MLPDigitsConfig(StrictModel):
    hidden: list[int] = [256, 256]
    activation: Literal["relu", "tanh", "gelu"] = "relu"
    train: TrainConfig = TrainConfig(steps=3000, batch_size=64, lr=1e-3, eval_every=250, log_every=10)
    thresholds: MLPDigitsThresholds = MLPDigitsThresholds()

    @model_validator(mode="after")
    def _check(self):
        if self.train.steps < 1:  # an update needs at least one step (and the random walk one batch)
            raise NeumoError(
                f"train.steps must be >= 1 for F-mlp-digits (it measures an update); got {self.train.steps}"
            )
        return self


@register_study
class MLPDigits(Study):
    id = "F-mlp-digits"
    instrument = "foundation"
    claim = (
        "An MLP trained on the scikit-learn digits reaches >95% test accuracy, and its first layer's "
        "update W_t - W_0 has a stable rank far below that of the same training on shuffled labels "
        "and of a random walk on the same inputs of the same norm."
    )
    citation = "Neural Matthew Effect essay; low-rank updates as in Hu et al. 2021 (LoRA) motivation"
    Config = MLPDigitsConfig
    presets = {"quick": {"train": {"steps": 800, "eval_every": 200}}, "full": {}}
    nulls = {
        "shuffled_labels": "the same training on permuted labels (same init and batches)",
        "random_walk": "sum of random per-example outer products on the same input batches, "
        "rescaled to the update's Frobenius norm",
    }
    supports_checkpoints = True
    quick_cost_s = 15.0

    def checks(self, cfg):
        out = [CheckSpec("test_acc", "test_acc", ">=", "min_test_acc", label="test accuracy")]
        for rank, word in (("sr", "stable rank"), ("erank", "entropy effective rank")):
            out += [
                CheckSpec(
                    f"{rank}_update_over_shuffled",
                    f"{rank}_update",
                    "<=",
                    "max_rank_ratio",
                    null="shuffled_labels",
                    label=f"{word} of ΔW / same training on shuffled labels",
                ),
                CheckSpec(
                    f"{rank}_update_over_random_walk",
                    f"{rank}_update",
                    "<=",
                    "max_rank_ratio",
                    null="random_walk",
                    controls=("shuffled_labels",),
                    label=f"{word} of ΔW / random walk on the same inputs, same norm",
                ),
            ]
        return out

    def preconditions(self, cfg):
        return [GateSpec("train_acc", "train_acc", ">=", "min_train_acc", why="the network fitted its training set")]

    def measure(self, cfg: MLPDigitsConfig, ctx: StudyContext) -> Measurement:
        data = load_digits_split(ctx.seed)
        y_train = shuffled_labels(data.y_train, ctx.seed) if ctx.arm == "shuffled_labels" else data.y_train
        model = build_model("mlp", seed=ctx.seed, in_dim=64, out_dim=10, hidden=cfg.hidden, activation=cfg.activation)
        assert isinstance(model, MLP)
        first = model.net[0]
        assert isinstance(first, nn.Linear)
        w0 = first.weight.detach().clone()  # a pure function of the seed, so also right on resume
        opt = make_optimizer(model.parameters(), cfg.train)
        batches = minibatches(data.x_train, y_train, cfg.train.batch_size, ctx.seed)

        def loss_fn(m, batch):
            x, y = batch
            logits = m(x)
            return F.cross_entropy(logits, y), {"train_acc": (logits.argmax(1) == y).float().mean()}

        def eval_fn(m):
            return {"test_acc": (m(data.x_test).argmax(1) == data.y_test).float().mean().item()}

        trainer = Trainer(
            model,
            opt,
            loss_fn,
            batches,
            cfg.train.steps,
            eval_fn=eval_fn,
            eval_every=cfg.train.eval_every,
            log_every=cfg.train.log_every,
            run=ctx.run,
            checkpoint_every=ctx.checkpoint_every,
            grad_clip=cfg.train.grad_clip,
            progress=ctx.progress,
        )
        trainer.fit(resume=ctx.resume)
        with torch.no_grad():
            test_acc = eval_fn(model)["test_acc"]
            train_acc = (model(data.x_train).argmax(1) == y_train).float().mean().item()
        dw = first.weight.detach() - w0
        values = {
            "test_acc": test_acc,
            "train_acc": train_acc,
            **_ranks("update", dw),
            **_ranks("W0", w0),
            **_ranks("Wt", first.weight.detach()),
        }
        nulls = {}
        if ctx.arm == "treatment":
            rw = random_walk_update(
                [batches(s)[0] for s in range(cfg.train.steps)], dw.shape[0], float(dw.norm()), ctx.seed
            )
            nulls["random_walk"] = _ranks("update", rw)
            if ctx.keep_figures:
                ctx.save_figure("test_accuracy", _figure(trainer.history))
        return Measurement(values=values, nulls=nulls)

    def summarize(self, cfg, m):
        return (
            f"test accuracy {m.get('test_acc', float('nan')):.3f}; first-layer stable rank: W_0 "
            f"{m.get('sr_W0', float('nan')):.1f}, ΔW {m.get('sr_update', float('nan')):.2f}, ΔW on shuffled "
            f"labels {m.get('shuffled_labels:sr_update', float('nan')):.2f}, random walk "
            f"{m.get('random_walk:sr_update', float('nan')):.2f} (seed means)"
        )


def _ranks(prefix: str, w: torch.Tensor) -> dict[str, float]:
    r = matrix_ranks(w)
    return {f"sr_{prefix}": float(r["stable_rank"]), f"erank_{prefix}": float(r["entropy_rank"])}


def _figure(history):
    from neumo.report.figures import line_plot

    steps = [h["step"] for h in history]
    fig, _ = line_plot(
        {"test accuracy": (steps, [h["test_acc"] for h in history])},
        xlabel="step",
        ylabel="accuracy",
        title="MLP on digits",
    )
    return fig


__all__ = ["MLPDigits", "MLPDigitsConfig"]
