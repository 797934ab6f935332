"""Arithmetic tasks with length splits: addition, multiplication, decimal comparison, max.

Numbers are written least significant digit first (the order in which carries flow). The answer is
produced token by token after ``=``: the input at an answer position is the previous answer digit
(``TaskBatch.feedback``), so evaluation can feed the model its own outputs. Addition's scratchpad
interleaves the carry into each digit: ``= r0 c1 r1 c2 r2 ...`` (every intermediate carry supervised).
Metadata: ``digit`` (B, T) answer digit index at target positions (-1 elsewhere), ``carry`` (B, T)
the carry into that digit (addition).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from neumo.memory.tasks.base import IGNORE, Task, TaskBatch, make_batch, register_task

PLUS, TIMES, EQ, DOT, VS, ASK, PAD = 10, 11, 12, 13, 14, 15, 16


def _digits(rng, n: int, k: int) -> np.ndarray:
    """(n, k) random digits, LSB first, with a nonzero most significant digit."""
    d = rng.integers(0, 10, size=(n, k))
    d[:, -1] = rng.integers(1, 10, size=n)
    return d


def _value(d: np.ndarray) -> np.ndarray:
    return (d * (10 ** np.arange(d.shape[1], dtype=object))).sum(1)


def _to_digits(v: np.ndarray, k: int) -> np.ndarray:
    return np.array([[(int(x) // 10**i) % 10 for i in range(k)] for x in v], dtype=np.int64)


def _answer_batch(prefix: np.ndarray, answer: np.ndarray, extra: dict[str, np.ndarray]) -> TaskBatch:
    """prefix (n, P) ending in '=', answer tokens (n, R): targets predict answer[j] at position P-1+j."""
    n, P = prefix.shape
    R = answer.shape[1]
    ids = np.concatenate([prefix, answer], 1)
    y = np.full_like(ids, IGNORE)
    y[:, P - 1 : P - 1 + R] = answer
    fb = np.zeros(P + R, dtype=bool)
    fb[P:] = True
    meta = {}
    for k, v in extra.items():
        m = np.full_like(ids, -1)
        m[:, P - 1 : P - 1 + R] = v
        meta[k] = m
    return make_batch(ids, y, meta, feedback=fb, offset=0)


class _Arith(Task):
    family: ClassVar[str] = "arithmetic"
    length_knob: ClassVar[str] = "n_digits"
    n_digits: int = Field(4, ge=1, le=200)

    @property
    def vocab_size(self) -> int:
        return 17

    @property
    def n_classes(self) -> int:
        return 10


@register_task
class Addition(_Arith):
    """a + b = r with ``n_digits``-digit operands; ``scratchpad`` writes the carry before each digit."""

    name: ClassVar[str] = "addition"
    scratchpad: bool = False

    def sample(self, n: int, rng: np.random.Generator, length: int | None = None) -> TaskBatch:
        k = int(length or self.n_digits)
        a, b = _digits(rng, n, k), _digits(rng, n, k)
        r = _to_digits(_value(a) + _value(b), k + 1)
        carry = np.zeros((n, k + 1), dtype=np.int64)  # carry into digit i
        for i in range(1, k + 1):
            carry[:, i] = (a[:, i - 1] + b[:, i - 1] + carry[:, i - 1]) // 10
        prefix = np.concatenate([a, np.full((n, 1), PLUS), b, np.full((n, 1), EQ)], 1)
        idx = np.broadcast_to(np.arange(k + 1), (n, k + 1))
        if not self.scratchpad:
            return _answer_batch(prefix, r, {"digit": idx, "carry": carry})
        # r0 c1 r1 c2 r2 ... c_k r_k
        ans = np.empty((n, 2 * k + 1), dtype=np.int64)
        ans[:, 0::2], ans[:, 1::2] = r, carry[:, 1:]
        didx = np.empty_like(ans)
        didx[:, 0::2], didx[:, 1::2] = idx, idx[:, 1:]
        c = np.empty_like(ans)
        c[:, 0::2], c[:, 1::2] = carry, carry[:, 1:]
        return _answer_batch(prefix, ans, {"digit": didx, "carry": c})


@register_task
class Multiplication(_Arith):
    """a x b = r with an ``n_digits``-digit a and a ``b_digits``-digit b (answer n + m digits)."""

    name: ClassVar[str] = "multiplication"
    b_digits: int = Field(2, ge=1, le=50)

    def sample(self, n: int, rng: np.random.Generator, length: int | None = None) -> TaskBatch:
        k, m = int(length or self.n_digits), self.b_digits
        a, b = _digits(rng, n, k), _digits(rng, n, m)
        r = _to_digits(_value(a) * _value(b), k + m)
        prefix = np.concatenate([a, np.full((n, 1), TIMES), b, np.full((n, 1), EQ)], 1)
        return _answer_batch(prefix, r, {"digit": np.broadcast_to(np.arange(k + m), (n, k + m))})


@register_task
class Comparison(Task):
    """Decimal comparison ("3.11 vs 3.8 ?"): same integer part, fractional parts of 1..``frac_digits``
    digits (written most significant first, as people write them). Classes: 0 first larger, 1 second
    larger, 2 equal. Sequences are left-padded to a common length."""

    name: ClassVar[str] = "comparison"
    family: ClassVar[str] = "arithmetic"
    length_knob: ClassVar[str] = "frac_digits"
    frac_digits: int = Field(3, ge=1, le=30)

    @property
    def vocab_size(self) -> int:
        return 17

    @property
    def n_classes(self) -> int:
        return 3

    def sample(self, n: int, rng: np.random.Generator, length: int | None = None) -> TaskBatch:
        k = int(length or self.frac_digits)
        T = 2 * (k + 2) + 2
        ids = np.full((n, T), PAD, dtype=np.int64)
        y = np.full((n, T), IGNORE, dtype=np.int64)
        whole = rng.integers(0, 10, size=n)
        la, lb = rng.integers(1, k + 1, size=n), rng.integers(1, k + 1, size=n)
        for i in range(n):
            fa, fb = rng.integers(0, 10, size=la[i]), rng.integers(0, 10, size=lb[i])
            toks = [whole[i], DOT, *fa, VS, whole[i], DOT, *fb, ASK]
            ids[i, T - len(toks) :] = toks
            va = sum(int(d) * 10 ** (k - j - 1) for j, d in enumerate(fa))  # scaled to k digits
            vb = sum(int(d) * 10 ** (k - j - 1) for j, d in enumerate(fb))
            y[i, -1] = 0 if va > vb else (1 if vb > va else 2)
        return make_batch(ids, y)


@register_task
class MaxOf(Task):
    """Max of a sequence of ``length`` tokens in [0, ``n_values``): at the end, or running (``every``)."""

    name: ClassVar[str] = "max"
    family: ClassVar[str] = "arithmetic"
    length: int = Field(16, ge=1)
    n_values: int = Field(16, ge=2)
    target: Literal["final", "every"] = "final"

    @property
    def vocab_size(self) -> int:
        return self.n_values

    @property
    def n_classes(self) -> int:
        return self.n_values

    def sample(self, n: int, rng: np.random.Generator, length: int | None = None) -> TaskBatch:
        T = int(length or self.length)
        x = rng.integers(0, self.n_values, size=(n, T))
        run = np.maximum.accumulate(x, axis=1)
        argmax_pos = np.array([[int(np.argmax(row[: t + 1])) for t in range(T)] for row in x])
        y = run.copy()
        if self.target == "final":
            y[:, :-1] = IGNORE
        return make_batch(x, y, {"state": run, "write_pos": argmax_pos})
