"""What every memory task returns, and the registry of tasks by name.

A task is a :class:`StrictModel` config (unknown knobs are errors) with ``sample(n, rng, length)``
returning a :class:`TaskBatch`: input ids (B, T), target class ids (B, T) with :data:`IGNORE` where no
loss applies, and per-token metadata (B, T) tensors documented by each task (e.g. ``state``: the true
machine state after the token; ``write_pos``: where the item a query reads was written, -1 if none).
Randomness comes only from the ``numpy.random.Generator`` passed in; :func:`task_rng` derives disjoint
train and test streams from one seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from neumo.config import StrictModel, validate
from neumo.errors import NeumoError
from neumo.seeding import numpy_rng

IGNORE = -100


@dataclass
class TaskBatch:
    inputs: torch.Tensor  # (B, T) long
    targets: torch.Tensor  # (B, T) long, IGNORE where there is no loss
    meta: dict[str, torch.Tensor] = field(default_factory=dict)  # (B, T) each
    feedback: torch.Tensor | None = None  # (T,) bool: input is the model's own previous output
    class_token_offset: int = 0  # token id of class c is offset + c (for feedback)

    @property
    def mask(self) -> torch.Tensor:
        return self.targets != IGNORE


def make_batch(
    inputs: np.ndarray,
    targets: np.ndarray,
    meta: dict[str, np.ndarray] | None = None,
    feedback: np.ndarray | None = None,
    offset: int = 0,
) -> TaskBatch:
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), dtype=torch.long)  # noqa: E731
    return TaskBatch(
        t(inputs),
        t(targets),
        {k: t(v) for k, v in (meta or {}).items()},
        None if feedback is None else torch.as_tensor(feedback, dtype=torch.bool),
        offset,
    )


class Task(StrictModel):
    """Base config of a task. Subclasses set ``name``, ``family`` and implement the three methods."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""
    length_knob: ClassVar[str] = "length"  # the knob that sets the sequence size

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @property
    def n_classes(self) -> int:
        raise NotImplementedError

    def sample(self, n: int, rng: np.random.Generator, length: int | None = None) -> TaskBatch:
        raise NotImplementedError

    def default_length(self) -> int:
        return int(getattr(self, self.length_knob))


_TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    _TASKS[cls.name] = cls
    return cls


def task_names() -> list[str]:
    _load()
    return sorted(_TASKS)


def task_class(name: str) -> type[Task]:
    _load()
    if name not in _TASKS:
        raise NeumoError(f"unknown task {name!r}; available: {', '.join(sorted(_TASKS))} (see 'neumo memory tasks')")
    return _TASKS[name]


def make_task(name: str, **knobs) -> Task:
    return validate(task_class(name), knobs, f"task {name!r}")


def task_rng(seed: int, split: str, *names: object) -> np.random.Generator:
    """Train and test streams from one seed never coincide (different derived seeds)."""
    if split not in ("train", "test", "probe"):
        raise NeumoError(f"split must be 'train', 'test' or 'probe'; got {split!r}")
    return numpy_rng(seed, "memory-task", split, *names)


def _load() -> None:
    from neumo.memory.tasks import arithmetic, cognitive, finite_state, recall  # noqa: F401
