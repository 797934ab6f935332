"""S-lottery-ticket: a sparse subnetwork found by iterative magnitude pruning with rewinding matches the dense net.

Setup (pinned): digits in [0, 1] (the seeded split), MLP 64-H-H-10 ReLU (H = ``hidden``), Adam
(lr ``lr``, batch 64), cross-entropy. Frankle et al. (2020)'s IMP with rewinding
(:func:`neumo.spectral.pruning.imp`):

1. train the dense net ``rewind_steps`` steps and save its weights theta_k (the rewind point);
2. ``rounds`` times: train ``steps`` steps (a fresh optimizer, masked gradients), remove ``rate`` of the
   remaining weights by global magnitude (Linear weights; biases kept), rewind the survivors to theta_k;
3. the ticket: theta_k with the final mask, trained ``steps`` steps with the mask held.

The remaining fraction is (1 - rate)^rounds: 12.5% (quick: 3 rounds of 50%) or 13.4% (full: 9 rounds of
20%), inside the 10-20% of the claim. Judged on test accuracy relative to the dense network (theta_k
trained the same ``steps`` without a mask, i.e. ``rewind_steps + steps`` in all).

Nulls (inline, from the same seed):

- ``dense``: the unpruned network, the reference of the difference;
- ``reinit`` (a control: it must not pass): the same mask on a fresh initialisation from another seed
  (:func:`neumo.spectral.pruning.reinit`), trained ``rewind_steps + steps`` with the mask held;
- ``random_mask`` (a control: it must not pass): theta_k with a random mask of the same per-layer
  sparsity (:func:`neumo.spectral.pruning.random_mask`), trained ``steps`` with the mask held.

A seed changes the split, the initialisation, the batch order, the reinitialisation and the random mask.
"""

from __future__ import annotations

import torch
from pydantic import Field

from neumo.config import StrictModel
from neumo.data.digits import minibatches
from neumo.seeding import derive_seed
from neumo.spectral.pruning import MaskCallback, imp, layer_sparsity, random_mask, reinit, rewind_, snapshot, sparsity
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import cross_entropy, digits, digits_mlp
from neumo.train import Trainer, TrainConfig, make_optimizer


class LotteryThresholds(Thresholds):
    margin: float = Field(
        -0.015,
        description="'matches the dense accuracy': test accuracy at most 1.5 points "
        "below the dense net's (about 5 of the 359 test digits, the "
        "seed-to-seed spread of a dense digits MLP); fixed before the "
        "first run",
    )
    min_train_acc: float = Field(0.98, description="competence gate: the dense network fitted its training set")
    min_remaining: float = Field(
        0.10, description="gate: the ticket keeps at least 10% of the weights (the claim's range)"
    )
    max_remaining: float = Field(
        0.20, description="gate: the ticket keeps at most 20% of the weights (the claim's range)"
    )


class LotteryConfig(StrictModel):
    hidden: list[int] = [64, 64]
    steps: int = 1200
    rewind_steps: int = 50
    rounds: int = 9
    rate: float = 0.2
    lr: float = 1e-3
    batch_size: int = 64
    thresholds: LotteryThresholds = LotteryThresholds()


def _acc(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


@register_study
class LotteryTicket(Study):
    id = "S-lottery-ticket"
    instrument = "spectral"
    claim = (
        "On digits, a subnetwork keeping 10-20% of an MLP's weights, found by iterative magnitude pruning with "
        "rewinding, reaches the dense network's test accuracy (at most 1.5 points below it), while the same "
        "mask re-initialised and a random mask of the same sparsity do not."
    )
    citation = (
        "Frankle & Carbin (2019), ICLR; Frankle, Dziugaite, Roy & Carbin (2020), Linear mode connectivity "
        "and the lottery ticket hypothesis, ICML"
    )
    Config = LotteryConfig
    presets = {"quick": {"steps": 800, "rewind_steps": 30, "rounds": 4, "rate": 0.4}, "full": {}}
    nulls = {
        "dense": "the unpruned network trained for the same steps (the reference)",
        "reinit": "the ticket's mask on a fresh initialisation from another seed",
        "random_mask": "a random mask of the same per-layer sparsity on the rewound weights",
    }
    replication = (
        "the seed sets the split, the initialisation, the batch order, the reinitialisation and the random mask"
    )
    quick_cost_s = 15.0
    threshold_history = (
        "No threshold changed. The quick preset changed after its first run, which was inconclusive "
        "on the dense_train_acc gate (0.974 < 0.98: 500 steps under-train the dense net): from 500 "
        "steps, rewind 20, 3 rounds of 50% (12.5% kept) to 800 steps, rewind 30, 4 rounds of 40% "
        "(13.0%). At that run the ticket was 2.1 points below dense. The full preset was not changed."
    )

    def checks(self, cfg):
        return [
            CheckSpec(
                "ticket_minus_dense",
                "test_acc",
                ">=",
                "margin",
                null="dense",
                relation="difference",
                controls=("reinit", "random_mask"),
                label="test accuracy of the ticket minus the dense network's",
            )
        ]

    def preconditions(self, cfg):
        return [
            GateSpec(
                "dense_train_acc",
                "dense_train_acc",
                ">=",
                "min_train_acc",
                why="the dense network fitted its training set",
            ),
            GateSpec("remaining_low", "remaining", ">=", "min_remaining", why="the ticket is in the 10-20% range"),
            GateSpec("remaining_high", "remaining", "<=", "max_remaining", why="the ticket is in the 10-20% range"),
        ]

    def measure(self, cfg: LotteryConfig, ctx: StudyContext) -> Measurement:
        x, y, d = digits(ctx.seed)
        batches = minibatches(x, y, cfg.batch_size, ctx.seed)
        tc = TrainConfig(optimizer="adam", lr=cfg.lr)

        def fit(model, steps, masks=None, offset=0):
            cbs = [MaskCallback(masks)] if masks is not None else []
            Trainer(
                model,
                make_optimizer(model.parameters(), tc),
                cross_entropy,
                lambda s: batches(s + offset),
                steps,
                callbacks=cbs,
            ).fit()
            return model

        model = digits_mlp(ctx.seed, cfg.hidden)
        fit(model, cfg.rewind_steps)
        theta_k = snapshot(model)
        dense = rewind_(digits_mlp(ctx.seed, cfg.hidden), theta_k)
        fit(dense, cfg.steps, offset=cfg.rewind_steps)
        result = imp(
            model,
            lambda m: fit(m, cfg.steps, offset=cfg.rewind_steps),
            cfg.rounds,
            cfg.rate,
            rewind_state=theta_k,
            scope="global",
        )
        masks = result.masks
        ticket = fit(model, cfg.steps, masks, offset=cfg.rewind_steps)  # model holds theta_k * mask
        fresh = reinit(model, masks, derive_seed(ctx.seed, "lottery-reinit") % (2**31))
        fit(fresh, cfg.rewind_steps + cfg.steps, masks)
        rmask = random_mask(masks, generator=derive_seed(ctx.seed, "lottery-random-mask"))
        rand = digits_mlp(ctx.seed, cfg.hidden)
        rewind_(rand, theta_k, rmask)
        fit(rand, cfg.steps, rmask, offset=cfg.rewind_steps)
        te = {
            k: _acc(m, d.x_test, d.y_test)
            for k, m in {"ticket": ticket, "dense": dense, "reinit": fresh, "random_mask": rand}.items()
        }
        values = {
            "test_acc": te["ticket"],
            "train_acc": _acc(ticket, x, y),
            "dense_train_acc": _acc(dense, x, y),
            "dense_test_acc": te["dense"],
            "reinit_test_acc": te["reinit"],
            "random_mask_test_acc": te["random_mask"],
            "remaining": 1.0 - sparsity(masks),
            **{f"remaining_{k.split('.')[1]}": 1.0 - v for k, v in layer_sparsity(masks).items()},
        }
        nulls = {k: {"test_acc": te[k]} for k in ("dense", "reinit", "random_mask")}
        table = [{"round": i + 1, "remaining": 1.0 - s} for i, s in enumerate(result.sparsity)]
        return Measurement(values=values, nulls=nulls, tables={"rounds": table})

    def summarize(self, cfg, m):
        nan = float("nan")
        return (
            f"test accuracy at {m.get('remaining', nan):.1%} of the weights: ticket {m.get('test_acc', nan):.3f}, "
            f"dense {m.get('dense_test_acc', nan):.3f}, same mask re-initialised "
            f"{m.get('reinit_test_acc', nan):.3f}, random mask {m.get('random_mask_test_acc', nan):.3f} "
            f"(seed means)"
        )


__all__ = ["LotteryConfig", "LotteryTicket"]
