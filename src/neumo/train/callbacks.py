"""The callback protocol of :class:`neumo.train.Trainer`.

Hook order within one ``fit`` (pinned by ``tests/test_train_hooks.py``)::

    on_fit_start
    for each step:
        on_step_start
        on_after_forward          (state.loss, state.outputs set)
        on_after_backward         (parameter .grad holds this step's gradient)
        on_before_optimizer_step  (after gradient clipping)
        on_after_optimizer_step   (parameters updated)
        on_step_end               (state.metrics may be extended; they are logged after this hook)
        on_eval                   (only on eval steps; state.metrics holds the eval metrics)
    on_fit_end

Every hook receives ``(trainer, state)``. Callbacks that keep state across a resume implement
``state_tensors() -> dict[str, Tensor]`` and ``load_state_tensors(d)``; the trainer checkpoints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

HOOKS: tuple[str, ...] = (
    "on_fit_start",
    "on_step_start",
    "on_after_forward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_after_optimizer_step",
    "on_step_end",
    "on_eval",
    "on_fit_end",
)


@dataclass
class StepState:
    """What a hook can see. ``step`` counts completed optimizer steps after this one (1-based)."""

    step: int = 0
    batch: Any = None
    loss: torch.Tensor | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    is_eval_step: bool = False


class Callback:
    """Base class: every hook is a no-op. Subclass and override what you need."""

    def on_fit_start(self, trainer, state: StepState) -> None: ...
    def on_step_start(self, trainer, state: StepState) -> None: ...
    def on_after_forward(self, trainer, state: StepState) -> None: ...
    def on_after_backward(self, trainer, state: StepState) -> None: ...
    def on_before_optimizer_step(self, trainer, state: StepState) -> None: ...
    def on_after_optimizer_step(self, trainer, state: StepState) -> None: ...
    def on_step_end(self, trainer, state: StepState) -> None: ...
    def on_eval(self, trainer, state: StepState) -> None: ...
    def on_fit_end(self, trainer, state: StepState) -> None: ...


class RecordingCallback(Callback):
    """Records every hook call as ``(hook, step)``; used to pin the hook order."""

    def __init__(self):
        self.calls: list[tuple[str, int]] = []

    def __getattribute__(self, name):
        if name in HOOKS:
            calls = object.__getattribute__(self, "calls")
            return lambda trainer, state: calls.append((name, state.step))
        return object.__getattribute__(self, name)
