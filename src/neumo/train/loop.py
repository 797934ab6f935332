"""One small training loop for every instrument.

Data come from ``batch_fn(step) -> batch``, a pure function of the step index (seeded inside), so a
resumed run sees exactly the batches it would have seen: resuming needs no data-loader state.
``loss_fn(model, batch)`` returns a loss tensor or ``(loss, outputs_dict)``.
"""

from __future__ import annotations


from typing import Any, Callable, Sequence

import torch

from neumo.errors import NeumoError
from neumo.train.callbacks import Callback, StepState
from neumo.train.checkpoint import (
    checkpoint_path,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
)

BatchFn = Callable[[int], Any]
LossFn = Callable[[torch.nn.Module, Any], Any]
EvalFn = Callable[[torch.nn.Module], dict[str, float]]


class Trainer:
    """Runs ``steps`` optimizer steps, calling callbacks in the documented order.

    Args:
        model, optimizer: what to train (the trainer never re-creates either).
        loss_fn, batch_fn: see module docstring.
        steps: total number of optimizer steps (a resumed run continues to this number).
        eval_fn / eval_every: evaluation metrics every ``eval_every`` steps and at the last step.
        log_every: log training metrics every N steps (to ``run`` when given).
        run: a :class:`neumo.runs.Run`; metrics go to its ``metrics.jsonl``.
        checkpoint_every: save a safetensors checkpoint into ``run.checkpoint_dir`` every N steps.
        grad_clip: max global gradient norm (``None``: no clipping).
        progress: show a tqdm bar.
        stop_fn: ``stop_fn(metrics) -> bool`` checked after each eval (early stopping).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        loss_fn: LossFn,
        batch_fn: BatchFn,
        steps: int,
        *,
        eval_fn: EvalFn | None = None,
        eval_every: int = 0,
        log_every: int = 1,
        run=None,
        checkpoint_every: int = 0,
        callbacks: Sequence[Callback] = (),
        grad_clip: float | None = None,
        progress: bool = False,
        stop_fn: Callable[[dict], bool] | None = None,
    ):
        if steps < 0:
            raise NeumoError(f"The 'steps' parameter must be >= 0. Got {steps} instead.")
        self.model, self.optimizer = model, optimizer
        self.loss_fn, self.batch_fn, self.eval_fn = loss_fn, batch_fn, eval_fn
        self.steps, self.eval_every, self.log_every = int(steps), int(eval_every), max(1, int(log_every))
        self.run, self.checkpoint_every = run, int(checkpoint_every)
        self.callbacks = list(callbacks)
        self.grad_clip, self.progress, self.stop_fn = grad_clip, progress, stop_fn
        self.start_step = 0
        self.history: list[dict[str, Any]] = []  # eval rows
        self.stopped_early = False

    # ------------------------------------------------------------------ helpers
    def _call(self, hook: str, state: StepState) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, state)

    def restore(self) -> int:
        """Load the latest checkpoint of ``run`` (if any) and drop metrics logged after it."""
        if self.run is None:
            return 0
        got = latest_checkpoint(self.run.checkpoint_dir)
        if got is None:
            self.run.rewind(0)
            return 0
        step, path = got
        meta = load_checkpoint(path, self.model, self.optimizer, self.callbacks)
        self.history = list(meta.get("extra", {}).get("history", []))
        self.run.rewind(step)
        self.start_step = step
        return step

    def _checkpoint(self, step: int) -> None:
        save_checkpoint(
            checkpoint_path(self.run.checkpoint_dir, step),
            self.model,
            self.optimizer,
            step,
            self.callbacks,
            extra={"history": self.history},
        )
        prune_checkpoints(self.run.checkpoint_dir, keep=2)

    def evaluate(self, step: int) -> dict[str, float]:
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = dict(self.eval_fn(self.model)) if self.eval_fn else {}
        finally:
            self.model.train(was_training)
        return out

    # ------------------------------------------------------------------ fit
    def fit(self, resume: bool = False) -> dict[str, Any]:
        if resume:
            self.restore()
        if self.run is not None:
            self.run.mark_running(self.start_step)
        state = StepState(step=self.start_step)
        self._call("on_fit_start", state)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.steps, initial=self.start_step, leave=False, dynamic_ncols=True)
        last: dict[str, Any] = {}
        self.model.train()
        for step in range(self.start_step + 1, self.steps + 1):
            state = StepState(step=step, batch=self.batch_fn(step - 1))
            self._call("on_step_start", state)
            out = self.loss_fn(self.model, state.batch)
            loss, outputs = out if isinstance(out, tuple) else (out, {})
            state.loss, state.outputs = loss, outputs
            if not torch.isfinite(loss):
                raise NeumoError(f"loss became {loss.item()} at step {step}; lower the learning rate")
            self._call("on_after_forward", state)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._call("on_after_backward", state)
            if self.grad_clip is not None:
                gn = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
                state.metrics["grad_norm"] = float(gn)
            self._call("on_before_optimizer_step", state)
            self.optimizer.step()
            self._call("on_after_optimizer_step", state)
            state.metrics["loss"] = float(loss.detach())
            for k, v in outputs.items():
                if isinstance(v, (int, float)) or (torch.is_tensor(v) and v.numel() == 1):
                    state.metrics[k] = float(v)
            self._call("on_step_end", state)
            is_eval = self.eval_fn is not None and (
                (self.eval_every and step % self.eval_every == 0) or step == self.steps
            )
            if is_eval:
                ev = self.evaluate(step)
                state.is_eval_step = True
                state.metrics.update({f"eval/{k}": v for k, v in ev.items()})
                self._call("on_eval", state)
                self.history.append({"step": step, **ev})
            if self.run is not None and (step % self.log_every == 0 or is_eval or step == self.steps):
                self.run.log(step, state.metrics)
            last = dict(state.metrics)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{last['loss']:.4f}")
            stop = is_eval and self.stop_fn is not None and self.stop_fn(ev)
            if (
                self.run is not None
                and self.checkpoint_every
                and (step % self.checkpoint_every == 0 or step == self.steps or stop)
            ):
                self._checkpoint(step)
                self.run.mark_step(step)
            if stop:
                self.stopped_early = True
                break
        if bar is not None:
            bar.close()
        self._call("on_fit_end", state)
        return last
