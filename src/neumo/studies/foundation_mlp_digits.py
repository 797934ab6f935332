"""F-mlp-digits: the end-to-end study of the foundation.

Setup (pinned): scikit-learn digits scaled to [0, 1], an 80/20 seeded split, MLP 64-256-256-10 with ReLU,
cross-entropy, Adam (lr 1e-3), batch 64. The claim concerns the first layer (256 x 64): its update
W_t - W_0 concentrates in a few directions, so its stable rank is far below the stable rank of W_0
(a uniform random matrix, about 28 for this shape).
"""

from __future__ import annotations

from typing import Literal

import torch.nn.functional as F

from neumo.config import StrictModel
from neumo.data.digits import load_digits_split, minibatches
from neumo.nn import build_model
from neumo.spectral.ranks import matrix_stable_rank
from neumo.studies.base import Study, StudyContext, Verdict, check, judge
from neumo.studies.registry import register_study
from neumo.train import Trainer, TrainConfig, make_optimizer


class MLPDigitsConfig(StrictModel):
    hidden: list[int] = [256, 256]
    activation: Literal["relu", "tanh", "gelu"] = "relu"
    train: TrainConfig = TrainConfig(steps=3000, batch_size=64, lr=1e-3, eval_every=250, log_every=10)
    min_test_acc: float = 0.95
    max_rank_ratio: float = 0.25  # "far below": sr(W_t - W_0) <= ratio * sr(W_0)


@register_study
class MLPDigits(Study):
    id = "F-mlp-digits"
    instrument = "foundation"
    claim = ("An MLP trained on the scikit-learn digits reaches >95% test accuracy, and its first layer's "
             "update W_t - W_0 has a stable rank far below that layer's initial stable rank.")
    citation = "Neural Matthew Effect essay; low-rank updates as in Hu et al. 2021 (LoRA) motivation"
    Config = MLPDigitsConfig
    presets = {"quick": {"train": {"steps": 800, "eval_every": 200}}, "full": {}}

    def run(self, cfg: MLPDigitsConfig, ctx: StudyContext) -> Verdict:
        data = load_digits_split(ctx.seed)
        model = build_model("mlp", seed=ctx.seed, in_dim=64, out_dim=10, hidden=cfg.hidden,
                            activation=cfg.activation)
        w0 = model.net[0].weight.detach().clone()  # a pure function of the seed, so also right on resume
        opt = make_optimizer(model.parameters(), cfg.train)

        def loss_fn(m, batch):
            x, y = batch
            logits = m(x)
            return F.cross_entropy(logits, y), {"train_acc": (logits.argmax(1) == y).float().mean()}

        def eval_fn(m):
            acc = (m(data.x_test).argmax(1) == data.y_test).float().mean().item()
            return {"test_acc": acc}

        trainer = Trainer(model, opt, loss_fn, minibatches(data.x_train, data.y_train, cfg.train.batch_size,
                                                           ctx.seed),
                          cfg.train.steps, eval_fn=eval_fn, eval_every=cfg.train.eval_every,
                          log_every=cfg.train.log_every, run=ctx.run, checkpoint_every=ctx.checkpoint_every,
                          progress=ctx.progress)
        trainer.fit(resume=ctx.resume)
        acc = eval_fn(model)["test_acc"]
        w = model.net[0].weight.detach()
        sr0, srd, srw = matrix_stable_rank(w0), matrix_stable_rank(w - w0), matrix_stable_rank(w)
        fig = _figure(trainer.history)
        ctx.save_figure("test_accuracy", fig)
        return judge(self.id, [check("test_acc", acc, ">=", cfg.min_test_acc),
                               check("stable_rank_ratio_update_over_init", srd / sr0, "<=", cfg.max_rank_ratio)],
                     summary=(f"test accuracy {acc:.3f}; first-layer stable rank: W_0 {sr0:.1f}, "
                              f"W_t {srw:.1f}, W_t - W_0 {srd:.2f}"),
                     measured={"stable_rank_W0": sr0, "stable_rank_Wt": srw, "stable_rank_update": srd})


def _figure(history):
    from neumo.report.figures import line_plot

    steps = [h["step"] for h in history]
    fig, _ = line_plot({"test accuracy": (steps, [h["test_acc"] for h in history])},
                       xlabel="step", ylabel="accuracy", title="MLP on digits")
    return fig


__all__ = ["MLPDigits", "MLPDigitsConfig"]
