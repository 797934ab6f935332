"""Finite-state tasks: parity, Z_n counting, S5 / A5 word problems, flip-flop, any user-given DFA.

Inputs are machine symbols (token id = symbol). Targets are the machine's output after each symbol
(``target="every"``) or after the last one only (``"final"``). Metadata: ``state`` (B, T) true state after
the token, ``output`` (B, T) its label.

Scratchpad mode (``scratchpad=True``) interleaves a state token after every symbol,
``x1 s1 x2 s2 ...`` (state token id = n_symbols + state): the target at ``x_i`` is the state ``s_i``
(every intermediate state is supervised), and at evaluation the ``s_i`` inputs are the model's own
predictions (``TaskBatch.feedback``), so the whole computation is carried out step by step.
"""

from __future__ import annotations

from functools import cached_property
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from neumo.errors import NeumoError
from neumo.memory.automata import DFA, cyclic_dfa, group_dfa, random_dfa
from neumo.memory.tasks.base import IGNORE, Task, TaskBatch, make_batch, register_task


class MachineTask(Task):
    family: ClassVar[str] = "finite-state"
    length: int = Field(16, ge=1, description="number of input symbols")
    target: Literal["every", "final"] = "every"
    scratchpad: bool = False

    def machine(self) -> DFA:
        raise NotImplementedError

    @cached_property
    def _dfa(self) -> DFA:
        return self.machine()

    @property
    def vocab_size(self) -> int:
        d = self._dfa
        return d.n_symbols + (d.n_states if self.scratchpad else 0)

    @property
    def n_classes(self) -> int:
        d = self._dfa
        return d.n_states if self.scratchpad else int(d.output.max()) + 1

    def symbols(self, n: int, T: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, self._dfa.n_symbols, size=(n, T))

    def sample(self, n: int, rng: np.random.Generator, length: int | None = None) -> TaskBatch:
        T = int(length or self.length)
        d = self._dfa
        x = self.symbols(n, T, rng)
        states = d.run(x)
        out = d.output[states]
        if not self.scratchpad:
            y = out.copy()
            if self.target == "final":
                y[:, :-1] = IGNORE
            return make_batch(x, y, {"state": states, "output": out})
        A = d.n_symbols
        ids = np.empty((n, 2 * T), dtype=np.int64)
        ids[:, 0::2], ids[:, 1::2] = x, A + states
        y = np.full((n, 2 * T), IGNORE, dtype=np.int64)
        y[:, 0::2] = states
        fb = np.zeros(2 * T, dtype=bool)
        fb[1::2] = True
        rep = lambda a: np.repeat(a, 2, axis=1)  # noqa: E731
        return make_batch(ids, y, {"state": rep(states), "output": rep(out)}, feedback=fb, offset=A)


@register_task
class Parity(MachineTask):
    """Running parity of a bit string (the Z_2 machine)."""

    name: ClassVar[str] = "parity"

    def machine(self) -> DFA:
        return cyclic_dfa(2)


@register_task
class ModularCount(MachineTask):
    """Running sum mod ``modulus`` of symbols in Z_n (the cyclic group word problem)."""

    name: ClassVar[str] = "modular"
    modulus: int = Field(3, ge=2, le=64)

    def machine(self) -> DFA:
        return cyclic_dfa(self.modulus)


@register_task
class S5(MachineTask):
    """Word problem of S5: the running composition of 120 permutations (not solvable, NC1-complete)."""

    name: ClassVar[str] = "s5"

    def machine(self) -> DFA:
        return group_dfa(5, alternating=False)


@register_task
class A5(MachineTask):
    """Word problem of A5 (the 60 even permutations of 5 items)."""

    name: ClassVar[str] = "a5"

    def machine(self) -> DFA:
        return group_dfa(5, alternating=True)


@register_task
class DFATask(MachineTask):
    """Any DFA: give ``transitions`` [state][symbol] -> state (+ ``start``, ``accept``), or leave them
    empty for a random minimal machine with ``n_states`` states over ``n_symbols`` symbols."""

    name: ClassVar[str] = "dfa"
    transitions: list[list[int]] | None = None
    start: int = 0
    accept: list[int] | None = None
    n_states: int = Field(4, ge=1, le=64)
    n_symbols: int = Field(2, ge=1, le=64)
    dfa_seed: int = 0

    @model_validator(mode="after")
    def _check(self):
        if self.transitions is not None:
            self.machine()  # raises NeumoError on an invalid table
        return self

    def machine(self) -> DFA:
        if self.transitions is None:
            return random_dfa(self.n_states, self.n_symbols, self.dfa_seed)
        n = len(self.transitions)
        acc = set(self.accept or [])
        if any(not 0 <= a < n for a in acc):
            raise NeumoError(f"accept states must lie in [0, {n}); got {sorted(acc)}")
        widths = {len(r) for r in self.transitions}
        if len(widths) != 1:
            raise NeumoError("every row of 'transitions' needs one next state per symbol (same length)")
        return DFA(np.array(self.transitions), self.start, np.array([int(q in acc) for q in range(n)]))


@register_task
class FlipFlop(Task):
    """Flip-flop language (Liu et al. 2023): tokens w0 w1 (write a bit), i0 i1 (ignore), r (read).
    The target at every read is the last written bit. Metadata: ``state`` (last written bit),
    ``write_pos`` (at reads: where that bit was written; -1 elsewhere)."""

    name: ClassVar[str] = "flipflop"
    family: ClassVar[str] = "finite-state"
    length: int = Field(32, ge=2)
    p_ignore: float = Field(0.8, ge=0, lt=1)
    p_read: float = Field(0.1, gt=0, lt=1)

    @property
    def vocab_size(self) -> int:
        return 5

    @property
    def n_classes(self) -> int:
        return 2

    def sample(self, n: int, rng: np.random.Generator, length: int | None = None) -> TaskBatch:
        T = int(length or self.length)
        u = rng.random((n, T))
        bits = rng.integers(0, 2, size=(n, T))
        kind = np.where(u < self.p_read, 2, np.where(rng.random((n, T)) < self.p_ignore, 1, 0))
        kind[:, 0] = 0  # 0 write, 1 ignore, 2 read
        ids = np.where(kind == 0, bits, np.where(kind == 1, 2 + bits, 4))
        state = np.zeros((n, T), dtype=np.int64)
        wpos = np.full((n, T), -1, dtype=np.int64)
        last_bit, last_pos = bits[:, 0].copy(), np.zeros(n, dtype=np.int64)
        for t in range(T):
            w = kind[:, t] == 0
            last_bit[w], last_pos[w] = bits[w, t], t
            state[:, t] = last_bit
            wpos[:, t] = np.where(kind[:, t] == 2, last_pos, -1)
        y = np.where(kind == 2, state, IGNORE)
        return make_batch(ids, y, {"state": state, "write_pos": wpos})
