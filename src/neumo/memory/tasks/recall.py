"""Recall tasks: copy with lag, reverse, selective copy, associative recall, multi-query AR (MQAR).

Metadata: ``write_pos`` (B, T): at each position with a target, the position where the item it must
reproduce was written (-1 elsewhere); ``is_query`` (B, T) 1 at answer positions.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from neumo.errors import NeumoError
from neumo.memory.tasks.base import IGNORE, Task, TaskBatch, make_batch, register_task


class _Sequence(Task):
    family: ClassVar[str] = "recall"
    length_knob: ClassVar[str] = "n_items"
    n_items: int = Field(8, ge=1, description="items to reproduce")
    n_tokens: int = Field(8, ge=2, description="size of the item alphabet")

    @property
    def vocab_size(self) -> int:
        return self.n_tokens + 2  # items, blank/noise, go

    @property
    def n_classes(self) -> int:
        return self.n_tokens

    def _answer(self, items: np.ndarray, pos: np.ndarray, blank_len: int) -> TaskBatch:
        """items (B, n) written at positions pos (B, n) of a prefix of length P; answers follow."""
        n, k = items.shape
        P = int(pos.max()) + 1 + blank_len if pos.size else blank_len
        P = max(P, self._prefix_len(k))
        blank, go = self.n_tokens, self.n_tokens + 1
        ids = np.full((n, P + k), blank, dtype=np.int64)
        np.put_along_axis(ids, pos, items, axis=1)
        ids[:, P:] = go
        order = self._order(k)
        y = np.full_like(ids, IGNORE)
        y[:, P:] = items[:, order]
        wpos = np.full_like(ids, -1)
        wpos[:, P:] = pos[:, order]
        q = np.zeros_like(ids)
        q[:, P:] = 1
        return make_batch(ids, y, {"write_pos": wpos, "is_query": q})

    def _prefix_len(self, k: int) -> int:
        return k

    def _order(self, k: int) -> np.ndarray:
        return np.arange(k)


@register_task
class Copy(_Sequence):
    """Items, then ``lag`` blanks, then one go-token per item: reproduce the items in order."""

    name: ClassVar[str] = "copy"
    lag: int = Field(0, ge=0)

    def sample(self, n: int, rng: np.random.Generator, length: int | None = None) -> TaskBatch:
        k = int(length or self.n_items)
        items = rng.integers(0, self.n_tokens, size=(n, k))
        return self._answer(items, np.broadcast_to(np.arange(k), (n, k)).copy(), self.lag)


@register_task
class Reverse(Copy):
    """Like copy, answered in reverse order."""

    name: ClassVar[str] = "reverse"

    def _order(self, k: int) -> np.ndarray:
        return np.arange(k)[::-1]


@register_task
class SelectiveCopy(_Sequence):
    """``n_items`` items scattered among noise in a prefix of ``seq_len``; reproduce them in order."""

    name: ClassVar[str] = "selective_copy"
    seq_len: int = Field(32, ge=1)

    @model_validator(mode="after")
    def _check(self):
        if self.seq_len < self.n_items:
            raise NeumoError(f"selective_copy needs seq_len >= n_items; got {self.seq_len} < {self.n_items}")
        return self

    def _prefix_len(self, k: int) -> int:
        return max(self.seq_len, k)

    def sample(self, n: int, rng: np.random.Generator, length: int | None = None) -> TaskBatch:
        k = int(length or self.n_items)
        L = max(self.seq_len, k)
        pos = np.sort(np.argsort(rng.random((n, L)), axis=1)[:, :k], axis=1)
        items = rng.integers(0, self.n_tokens, size=(n, k))
        return self._answer(items, pos, 0)


@register_task
class MQAR(Task):
    """Multi-query associative recall (Arora et al. 2023): ``n_pairs`` key-value pairs, then queries
    (keys seen before) at positions spread over ``seq_len`` by the gap distribution; the target at a
    query is its value. Keys are tokens [0, n_keys), values [n_keys, n_keys + n_values), then noise.
    With ``overwrite`` a key may be rebound; the last binding is the answer. With ``fused_pairs`` each
    pair is one token (id n_keys + n_values + 1 + key * n_values + value), so that recall needs no
    previous-token circuit: one attention layer can match the key; the state a recurrent model needs is
    the same."""

    name: ClassVar[str] = "mqar"
    family: ClassVar[str] = "recall"
    length_knob: ClassVar[str] = "seq_len"
    n_pairs: int = Field(8, ge=1)
    n_queries: int | None = Field(None, ge=1, description="default: n_pairs")
    seq_len: int = Field(64, ge=2)
    n_keys: int = Field(64, ge=1)
    n_values: int = Field(64, ge=2)
    gap: Literal["uniform", "power", "end"] = "uniform"
    power_a: float = Field(0.01, gt=0)
    overwrite: bool = False
    fused_pairs: bool = False

    @model_validator(mode="after")
    def _check(self):
        if not self.overwrite and self.n_pairs > self.n_keys:
            raise NeumoError(f"n_pairs ({self.n_pairs}) > n_keys ({self.n_keys}): raise n_keys or set overwrite")
        if self.width * self.n_pairs + self.queries > self.seq_len:
            raise NeumoError(
                f"seq_len {self.seq_len} too short for {self.n_pairs} pairs and {self.queries} "
                f"queries; raise seq_len to {self.width * self.n_pairs + self.queries}"
            )
        return self

    @property
    def queries(self) -> int:
        return self.n_queries or self.n_pairs

    @property
    def width(self) -> int:
        return 1 if self.fused_pairs else 2

    @property
    def vocab_size(self) -> int:
        return self.n_keys + self.n_values + 1 + (self.n_keys * self.n_values if self.fused_pairs else 0)

    @property
    def n_classes(self) -> int:
        return self.n_values

    def _query_positions(self, n: int, start: int, L: int, q: int, rng) -> np.ndarray:
        span = L - start
        if self.gap == "end":
            return np.broadcast_to(np.arange(L - q, L), (n, q)).copy()
        if self.gap == "uniform":
            w: np.ndarray = np.ones(span)
        else:  # zoology's power law over distance
            w = self.power_a * np.arange(1, span + 1) ** (self.power_a - 1)
        # q distinct positions per row drawn in proportion to w (Gumbel top-k: successive sampling
        # without replacement, vectorised over the batch)
        keys = np.log(w)[None, :] + rng.gumbel(size=(n, span))
        return np.sort(start + np.argsort(-keys, axis=1)[:, :q], 1)

    def sample(self, n: int, rng: np.random.Generator, length: int | None = None) -> TaskBatch:
        L, P, q, W = int(length or self.seq_len), self.n_pairs, self.queries, self.width
        if W * P + q > L:
            raise NeumoError(f"length {L} too short for {P} pairs and {q} queries")
        if self.overwrite:
            keys = rng.integers(0, self.n_keys, size=(n, P))
        else:
            keys = np.argsort(rng.random((n, self.n_keys)), axis=1)[:, :P]
        vals = rng.integers(0, self.n_values, size=(n, P))
        noise = self.n_keys + self.n_values
        ids = np.full((n, L), noise, dtype=np.int64)
        if self.fused_pairs:
            ids[:, :P] = noise + 1 + keys * self.n_values + vals
        else:
            ids[:, 0 : 2 * P : 2], ids[:, 1 : 2 * P : 2] = keys, self.n_keys + vals
        qpos = self._query_positions(n, W * P, L, q, rng)
        pick = rng.integers(0, P, size=(n, q))  # which pair each query asks for
        qkeys = np.take_along_axis(keys, pick, 1)
        # last binding of each queried key (overwrite): the largest pair index with that key
        match = keys[:, None, :] == qkeys[:, :, None]  # (n, q, P)
        last = P - 1 - np.argmax(match[:, :, ::-1], axis=2)
        np.put_along_axis(ids, qpos, qkeys, 1)
        y = np.full((n, L), IGNORE, dtype=np.int64)
        np.put_along_axis(y, qpos, np.take_along_axis(vals, last, 1), 1)
        wpos = np.full((n, L), -1, dtype=np.int64)
        np.put_along_axis(wpos, qpos, last if self.fused_pairs else 2 * last + 1, 1)
        isq = np.zeros((n, L), dtype=np.int64)
        np.put_along_axis(isq, qpos, 1, 1)
        return make_batch(ids, y, {"write_pos": wpos, "is_query": isq})


@register_task
class AssociativeRecall(MQAR):
    """Associative recall: ``n_pairs`` pairs then a single query at the end."""

    name: ClassVar[str] = "associative_recall"
    n_queries: int | None = 1
    seq_len: int = Field(17, ge=2)
    gap: Literal["uniform", "power", "end"] = "end"
