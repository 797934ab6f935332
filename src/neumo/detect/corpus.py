"""A synthetic language with a known distribution p: hierarchical latent contexts over automata.

Hierarchy: a root c0 splits into registers (c1: e.g. "formal", "chat"), each register into styles (c2).
Every style is a deterministic probabilistic automaton over ``vocab_size`` symbols: in state s it emits
w ~ E[s] and moves to delta[s, w]. A style inherits its register's automaton and perturbs it (a share
``style_mix`` of fresh emissions, a share ``style_rewire`` of rewired transitions), so styles under one
register are related, as dialects of one register are. Style frequencies are long-tailed: the formal
register's single style has weight ``head_weight``; the chat styles share the rest with Zipf weights.

A document is drawn by picking one style with its weight and running its automaton from state 0. The true
next-token distribution of the whole language (style unknown) is the posterior mixture
p(w | x_<t) = sum_k P(k | x_<t) E_k[s_k(x_<t), w], computed exactly by :meth:`next_token_probs`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neumo.config import StrictModel
from neumo.errors import NeumoError
from neumo.seeding import numpy_rng


class LanguageConfig(StrictModel):
    vocab_size: int = 24
    n_states: int = 6
    n_chat_styles: int = 10
    head_weight: float = 0.9  # share of documents in the formal style
    zipf_exponent: float = 1.0  # chat style k (1-based) has weight proportional to k^-s
    emission_concentration: float = 0.3
    style_mix: float = 0.5
    style_rewire: float = 0.3


@dataclass(frozen=True)
class HierarchicalLanguage:
    names: list[str]  # one per style, e.g. "formal", "chat-3"
    registers: list[str]  # register of each style
    weights: np.ndarray  # (K,) style probabilities
    emissions: np.ndarray  # (K, S, V)
    delta: np.ndarray  # (K, S, V) next state

    @property
    def vocab_size(self) -> int:
        return self.emissions.shape[2]

    @property
    def n_styles(self) -> int:
        return len(self.names)

    @classmethod
    def build(cls, cfg: LanguageConfig, seed: int) -> "HierarchicalLanguage":
        if not 0 < cfg.head_weight < 1 or cfg.n_chat_styles < 1:
            raise NeumoError("head_weight must lie in (0, 1) and n_chat_styles must be >= 1")
        rng = numpy_rng(seed, "language")
        V, S, a = cfg.vocab_size, cfg.n_states, cfg.emission_concentration

        def automaton():
            return rng.dirichlet([a] * V, size=S), rng.integers(0, S, size=(S, V))

        def child(E, D):
            E2 = (1 - cfg.style_mix) * E + cfg.style_mix * rng.dirichlet([a] * V, size=S)
            D2 = np.where(rng.random((S, V)) < cfg.style_rewire, rng.integers(0, S, size=(S, V)), D)
            return E2 / E2.sum(1, keepdims=True), D2

        formal = child(*automaton())
        chat_base = automaton()
        chats = [child(*chat_base) for _ in range(cfg.n_chat_styles)]
        z = np.arange(1, cfg.n_chat_styles + 1, dtype=float) ** -cfg.zipf_exponent
        weights = np.r_[cfg.head_weight, (1 - cfg.head_weight) * z / z.sum()]
        E = np.stack([formal[0]] + [c[0] for c in chats])
        D = np.stack([formal[1]] + [c[1] for c in chats])
        names = ["formal"] + [f"chat-{k + 1}" for k in range(cfg.n_chat_styles)]
        return cls(names, ["formal"] + ["chat"] * cfg.n_chat_styles, weights, E, D)

    def sample(self, n: int, length: int, seed: int, style: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """n documents of ``length`` symbols: (ids (n, length), style index (n,)). ``style`` fixes the style."""
        rng = numpy_rng(seed, "sample", style)
        k = np.full(n, style) if style is not None else rng.choice(self.n_styles, size=n, p=self.weights)
        ids = np.zeros((n, length), np.int64)
        s = np.zeros(n, np.int64)
        for t in range(length):
            p = self.emissions[k, s]  # (n, V)
            u = rng.random((n, 1))
            w = np.minimum((p.cumsum(1) < u).sum(1), self.vocab_size - 1)  # inverse-CDF draw
            ids[:, t] = w
            s = self.delta[k, s, w]
        return ids, k

    def style_probs(self, ids: np.ndarray) -> np.ndarray:
        """ids (n, T) -> (K, n, T, V): p_k(w | x_<t) for every style k (the style-conditional automata)."""
        n, T = ids.shape
        K = self.n_styles
        out = np.zeros((K, n, T, self.vocab_size))
        s = np.zeros((K, n), np.int64)
        kk = np.arange(K)[:, None]
        for t in range(T):
            out[:, :, t] = self.emissions[kk, s]
            s = self.delta[kk, s, ids[None, :, t]]
        return out

    def next_token_probs(self, ids: np.ndarray, style: int | None = None) -> np.ndarray:
        """ids (n, T) -> (n, T, V): the true p(x_t = w | x_<t), a posterior mixture over styles
        (or the automaton of one ``style``)."""
        ps = self.style_probs(ids)
        if style is not None:
            return ps[style]
        n, T = ids.shape
        logw = np.log(self.weights)[:, None] + np.zeros((1, n))  # (K, n) log P(k, x_<t)
        out = np.zeros((n, T, self.vocab_size))
        for t in range(T):
            post = np.exp(logw - logw.max(0))
            post /= post.sum(0)
            out[:, t] = np.einsum("kn,knv->nv", post, ps[:, :, t])
            logw = logw + np.log(ps[:, np.arange(n), t, ids[:, t]])
        return out

    def log_prob(self, ids: np.ndarray) -> np.ndarray:
        """Exact log p(x) of each document under the language (n,)."""
        p = self.next_token_probs(ids)
        n, T = ids.shape
        return np.log(p[np.arange(n)[:, None], np.arange(T)[None], ids]).sum(1)
