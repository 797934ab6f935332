"""Cognitive tasks: n-back and delayed match-to-sample (DMS).

Metadata: ``write_pos`` (B, T) at each answer, the position of the stimulus it must be compared with
(-1 elsewhere).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from neumo.memory.tasks.base import IGNORE, Task, TaskBatch, make_batch, register_task


@register_task
class NBack(Task):
    """A stream of stimuli; from position n on, the target is 1 when x_t == x_{t-n} (with probability
    ``p_match`` the stimulus is forced to repeat the one n back)."""

    name: ClassVar[str] = "nback"
    family: ClassVar[str] = "cognitive"
    n: int = Field(2, ge=1)
    length: int = Field(24, ge=2)
    n_stimuli: int = Field(8, ge=2)
    p_match: float = Field(0.5, ge=0, le=1)

    @property
    def vocab_size(self) -> int:
        return self.n_stimuli

    @property
    def n_classes(self) -> int:
        return 2

    def sample(self, n: int, rng: np.random.Generator, length: int | None = None) -> TaskBatch:
        T = int(length or self.length)
        x = rng.integers(0, self.n_stimuli, size=(n, T))
        force = rng.random((n, T)) < self.p_match
        for t in range(self.n, T):
            x[force[:, t], t] = x[force[:, t], t - self.n]
        y = np.full((n, T), IGNORE, dtype=np.int64)
        wpos = np.full((n, T), -1, dtype=np.int64)
        if T > self.n:
            y[:, self.n :] = (x[:, self.n :] == x[:, : -self.n]).astype(np.int64)
            wpos[:, self.n :] = np.arange(self.n, T) - self.n
        return make_batch(x, y, {"write_pos": wpos})


@register_task
class DelayedMatch(Task):
    """Sample, ``delay`` steps (blank, or a distractor stimulus with probability ``p_distractor``), a
    cue, then a probe: the target at the probe is 1 when it matches the sample (probability 1/2)."""

    name: ClassVar[str] = "dms"
    family: ClassVar[str] = "cognitive"
    length_knob: ClassVar[str] = "delay"
    delay: int = Field(8, ge=0)
    n_stimuli: int = Field(8, ge=2)
    p_distractor: float = Field(0.0, ge=0, le=1)

    @property
    def vocab_size(self) -> int:
        return self.n_stimuli + 2  # stimuli, blank, cue

    @property
    def n_classes(self) -> int:
        return 2

    def sample(self, n: int, rng: np.random.Generator, length: int | None = None) -> TaskBatch:
        d = int(self.delay if length is None else length)
        K = self.n_stimuli
        T = d + 3
        ids = np.full((n, T), K, dtype=np.int64)
        sample = rng.integers(0, K, size=n)
        ids[:, 0] = sample
        distract = rng.random((n, d)) < self.p_distractor
        ids[:, 1 : 1 + d] = np.where(distract, rng.integers(0, K, size=(n, d)), K)
        ids[:, -2] = K + 1
        match = rng.random(n) < 0.5
        other = (sample + rng.integers(1, K, size=n)) % K  # any stimulus but the sample
        ids[:, -1] = np.where(match, sample, other)
        y = np.full((n, T), IGNORE, dtype=np.int64)
        y[:, -1] = match.astype(np.int64)
        wpos = np.full((n, T), -1, dtype=np.int64)
        wpos[:, -1] = 0
        return make_batch(ids, y, {"write_pos": wpos})
