"""Deterministic finite automata with outputs (Moore machines): run, minimise, compare.

A :class:`DFA` has ``n_states`` states, ``n_symbols`` input symbols, a transition table ``delta``
(S, A) of next states, a ``start`` state and an ``output`` label per state (accept = 1 / reject = 0
for a language; any small integer for a Moore machine; -1 means "never observed"). Both the tasks
(ground truth) and the probes (extracted machines) use it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import permutations

import numpy as np

from neumo.errors import NeumoError
from neumo.seeding import numpy_rng


@dataclass(frozen=True)
class DFA:
    delta: np.ndarray  # (S, A) int: next state
    start: int
    output: np.ndarray  # (S,) int: label of each state (-1 = unobserved)

    def __post_init__(self):
        d = np.asarray(self.delta, dtype=np.int64)
        o = np.asarray(self.output, dtype=np.int64)
        if d.ndim != 2 or d.size == 0:
            raise NeumoError("a DFA's transitions must be a non-empty table [state][symbol] -> state")
        if d.min() < 0 or d.max() >= d.shape[0]:
            raise NeumoError(f"DFA transitions must name states in [0, {d.shape[0]}); got {d.min()}..{d.max()}")
        if o.shape != (d.shape[0],):
            raise NeumoError(f"DFA needs one output per state ({d.shape[0]}); got {o.shape[0]}")
        if not 0 <= self.start < d.shape[0]:
            raise NeumoError(f"DFA start state {self.start} is not in [0, {d.shape[0]})")
        object.__setattr__(self, "delta", d)
        object.__setattr__(self, "output", o)

    @property
    def n_states(self) -> int:
        return int(self.delta.shape[0])

    @property
    def n_symbols(self) -> int:
        return int(self.delta.shape[1])

    def run(self, seqs: np.ndarray) -> np.ndarray:
        """States after each symbol: seqs (B, T) -> (B, T) (vectorised over the batch)."""
        seqs = np.asarray(seqs, dtype=np.int64)
        out = np.empty_like(seqs)
        s = np.full(seqs.shape[0], self.start, dtype=np.int64)
        for t in range(seqs.shape[1]):
            s = self.delta[s, seqs[:, t]]
            out[:, t] = s
        return out

    def outputs(self, seqs: np.ndarray) -> np.ndarray:
        return self.output[self.run(seqs)]

    def reachable(self) -> np.ndarray:
        seen = np.zeros(self.n_states, dtype=bool)
        seen[self.start] = True
        todo = deque([self.start])
        while todo:
            q = todo.popleft()
            for r in self.delta[q]:
                if not seen[r]:
                    seen[r] = True
                    todo.append(int(r))
        return seen


def minimize(dfa: DFA) -> DFA:
    """The minimal equivalent machine (reachable states, Moore partition refinement on outputs)."""
    keep = np.flatnonzero(dfa.reachable())
    index = {int(q): i for i, q in enumerate(keep)}
    delta = np.array([[index[int(r)] for r in dfa.delta[q]] for q in keep], dtype=np.int64)
    out = dfa.output[keep]
    _, block = np.unique(out, return_inverse=True)
    while True:
        sig = np.concatenate([block[:, None], block[delta]], axis=1)  # (S, 1 + A)
        _, new = np.unique(sig, axis=0, return_inverse=True)
        new = new.reshape(-1)
        if len(np.unique(new)) == len(np.unique(block)):
            break
        block = new
    # renumber blocks in order of first appearance from the start (canonical form)
    order: list[int] = []
    seen: dict[int, int] = {}
    todo = deque([int(block[index[dfa.start]])])
    rep = {int(b): int(np.flatnonzero(block == b)[0]) for b in np.unique(block)}
    while todo:
        b = todo.popleft()
        if b in seen:
            continue
        seen[b] = len(order)
        order.append(b)
        todo.extend(int(block[delta[rep[b], a]]) for a in range(delta.shape[1]))
    new_delta = np.array([[seen[int(block[delta[rep[b], a]])] for a in range(delta.shape[1])] for b in order])
    return DFA(new_delta, 0, np.array([out[rep[b]] for b in order]))


def equivalent(a: DFA, b: DFA, min_len: int = 0) -> bool:
    """Whether ``a`` and ``b`` give the same output on every string of length >= ``min_len``."""
    return counterexample(a, b, min_len) is None


def counterexample(a: DFA, b: DFA, min_len: int = 0) -> list[int] | None:
    """A shortest string (length >= ``min_len``) on which the outputs differ, or ``None``."""
    if a.n_symbols != b.n_symbols:
        raise NeumoError(f"cannot compare machines over {a.n_symbols} and {b.n_symbols} symbols")
    todo: deque[tuple[tuple[int, int], list[int]]] = deque([((a.start, b.start), [])])
    seen = set()
    while todo:
        (p, q), word = todo.popleft()
        key = (p, q, min(len(word), min_len))
        if key in seen:
            continue
        seen.add(key)
        if len(word) >= min_len and a.output[p] != b.output[q]:
            return word
        for s in range(a.n_symbols):
            todo.append(((int(a.delta[p, s]), int(b.delta[q, s])), word + [s]))
    return None


def merge_unobserved_start(dfa: DFA) -> DFA:
    """Minimise, letting an unobserved start output (-1) take whichever label merges it into a state."""
    best = minimize(dfa)
    if dfa.output[dfa.start] != -1:
        return best
    for label in np.unique(dfa.output[dfa.output >= 0]):
        out = dfa.output.copy()
        out[dfa.start] = label
        m = minimize(DFA(dfa.delta, dfa.start, out))
        if m.n_states < best.n_states:
            best = m
    return best


# ------------------------------------------------------------------ named machines


def cyclic_dfa(n: int) -> DFA:
    """Z_n: symbols are group elements 0..n-1, state = running sum mod n, output = state."""
    q = np.arange(n)
    return DFA((q[:, None] + q[None, :]) % n, 0, q.copy())


def parity_dfa() -> DFA:
    return cyclic_dfa(2)


def permutation_group(n: int, alternating: bool) -> list[tuple[int, ...]]:
    perms = list(permutations(range(n)))
    if alternating:
        perms = [p for p in perms if _sign(p) == 1]
    return perms


def _sign(p: tuple[int, ...]) -> int:
    inv = sum(1 for i in range(len(p)) for j in range(i + 1, len(p)) if p[i] > p[j])
    return -1 if inv % 2 else 1


def group_dfa(n: int = 5, alternating: bool = False) -> DFA:
    """Word problem of S_n (or A_n): state = product of the permutations read so far (g_t o ... o g_1)."""
    perms = permutation_group(n, alternating)
    index = {p: i for i, p in enumerate(perms)}
    compose = np.array([[index[tuple(g[h[i]] for i in range(n))] for g in perms] for h in perms])
    return DFA(compose, index[tuple(range(n))], np.arange(len(perms)))


def random_dfa(n_states: int, n_symbols: int, seed: int, max_tries: int = 1000) -> DFA:
    """A random minimal DFA with ``n_states`` states, all reachable, accept labels 0/1."""
    rng = numpy_rng(seed, "random_dfa", n_states, n_symbols)
    for _ in range(max_tries):
        delta = rng.integers(0, n_states, size=(n_states, n_symbols))
        out = rng.integers(0, 2, size=n_states)
        d = DFA(delta, 0, out)
        if minimize(d).n_states == n_states:
            return d
    raise NeumoError(f"found no minimal {n_states}-state DFA over {n_symbols} symbols; add symbols")
