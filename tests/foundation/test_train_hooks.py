import torch

from neumo.runs import Run
from neumo.train import HOOKS, Trainer
from neumo.train.callbacks import Callback, RecordingCallback


def _setup(steps=3, eval_every=2):
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.ones(4, 2)

    def loss_fn(m, batch):
        return (m(batch) ** 2).mean()

    return Trainer(model, opt, loss_fn, lambda step: x, steps, eval_fn=lambda m: {"v": 1.0},
                   eval_every=eval_every)


def test_hook_order_is_pinned():
    rec = RecordingCallback()
    t = _setup()
    t.callbacks = [rec]
    t.fit()
    step_hooks = ["on_step_start", "on_after_forward", "on_after_backward", "on_before_optimizer_step",
                  "on_after_optimizer_step", "on_step_end"]
    expected = [("on_fit_start", 0)]
    for s in (1, 2, 3):
        expected += [(h, s) for h in step_hooks]
        if s in (2, 3):  # eval every 2 steps and at the last step
            expected.append(("on_eval", s))
    expected.append(("on_fit_end", 3))
    assert rec.calls == expected
    assert set(HOOKS) == {h for h, _ in rec.calls}


class _Probe(Callback):
    """Checks what each hook can see: grads after backward, updated params after the step."""

    def __init__(self):
        self.seen = {}

    def on_after_forward(self, trainer, state):
        self.seen["loss_at_forward"] = state.loss is not None

    def on_after_backward(self, trainer, state):
        self.seen["grad"] = trainer.model.weight.grad.clone()
        self.seen["w_before"] = trainer.model.weight.detach().clone()

    def on_after_optimizer_step(self, trainer, state):
        self.seen["w_after"] = trainer.model.weight.detach().clone()

    def on_step_end(self, trainer, state):
        state.metrics["probe"] = 7.0


def test_hooks_see_gradients_and_updates_and_can_log(tmp_path):
    probe = _Probe()
    t = _setup(steps=1, eval_every=0)
    t.callbacks = [probe]
    t.run = Run.create("hooks", {}, root=tmp_path)
    t.fit()
    assert probe.seen["loss_at_forward"]
    g = probe.seen["grad"]
    assert torch.allclose(probe.seen["w_after"], probe.seen["w_before"] - 0.1 * g)
    assert t.run.metrics()[-1]["probe"] == 7.0
