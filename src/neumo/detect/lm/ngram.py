"""A smoothed character n-gram LM (interpolated absolute discounting), fitted in about a second.

p_k(w | h) = max(c(h,w) - D, 0) / c(h) + D * N1+(h) / c(h) * p_{k-1}(w | h'), where h' drops the oldest
symbol, N1+(h) counts the distinct successors of h, and p_{k-1} is used alone when c(h) = 0; the recursion
ends in the uniform distribution, so every token has non-zero probability (Ney, Essen & Kneser 1994).

Counts are stored as sorted arrays of (context, next) codes, ``code = sum_j ctx[j] * V**j``, so that a
whole batch is looked up with ``searchsorted`` instead of Python dictionaries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from neumo.detect.lm.base import CausalLM, char_alphabet
from neumo.errors import NeumoError


@dataclass
class NgramCounts:
    """Sorted (context, next) codes and their counts for each context length k = 0 .. order-1."""

    vocab_size: int
    order: int
    codes: list[np.ndarray]
    counts: list[np.ndarray]

    @classmethod
    def fit(cls, sequences: list[np.ndarray], vocab_size: int, order: int, pad_id: int) -> "NgramCounts":
        if order < 1:
            raise NeumoError(f"The 'order' parameter must be >= 1. Got {order!r} instead.")
        if vocab_size**order >= 2**62:
            raise NeumoError(
                f"vocabulary {vocab_size} and order {order} overflow the int64 context codes; lower the order"
            )
        padded = [
            np.concatenate([np.full(order - 1, pad_id, np.int64), np.asarray(s, np.int64)]) for s in sequences if len(s)
        ]
        codes, counts = [], []
        for k in range(order):
            pair = []
            for s in padded:
                n = len(s) - (order - 1)
                c = s[order - 1 : order - 1 + n].copy()  # next symbol w
                for j in range(1, k + 1):  # ctx[j-1] = symbol j steps back
                    c += s[order - 1 - j : order - 1 - j + n] * vocab_size**j
                pair.append(c)
            u, cnt = np.unique(np.concatenate(pair), return_counts=True)
            codes.append(u)
            counts.append(cnt.astype(np.float64))
        return cls(vocab_size, order, codes, counts)

    def _dense(self, k: int, ctx_codes: np.ndarray) -> np.ndarray:
        """(N,) context codes of length k -> (N, V) counts c(h, w)."""
        V, P, C = self.vocab_size, self.codes[k], self.counts[k]
        lo = np.searchsorted(P, ctx_codes * V)
        hi = np.searchsorted(P, ctx_codes * V + V)
        lengths = hi - lo
        rows = np.repeat(np.arange(len(ctx_codes)), lengths)
        starts = np.cumsum(lengths) - lengths
        entry = lo[rows] + (np.arange(lengths.sum()) - starts[rows])
        out = np.zeros((len(ctx_codes), V))
        out[rows, P[entry] % V] = C[entry]
        return out

    def probs(self, history: np.ndarray, discount: float) -> np.ndarray:
        """history (N, order-1), most recent symbol last -> next-symbol probabilities (N, V), float64."""
        N, V = history.shape[0], self.vocab_size
        p = np.full((N, V), 1.0 / V)
        for k in range(self.order):
            code = np.zeros(N, np.int64)
            for j in range(1, k + 1):
                code += history[:, -j] * V ** (j - 1)
            c = self._dense(k, code)  # (N, V)
            total = c.sum(1, keepdims=True)
            distinct = (c > 0).sum(1, keepdims=True)
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            mixed = np.maximum(c - discount, 0.0) / safe + discount * distinct / safe * p
            p = np.where(seen, mixed, p)
        return p


class NgramLM(CausalLM):
    """Character n-gram model. Ids 0..A-1 are the alphabet (0 = unknown character), id A is the start token."""

    def __init__(self, alphabet: str, counts: NgramCounts, discount: float = 0.75, name: str = "ngram"):
        self.alphabet = alphabet
        self.index = {c: i for i, c in enumerate(alphabet)}
        self.counts, self.discount = counts, float(discount)
        self.name = name
        self.vocab_size = len(alphabet) + 1
        self.hidden_size = self.vocab_size  # a table model: its logits are not rank-limited
        self.bos_id = self.pad_id = len(alphabet)
        self.max_len = 1 << 20  # context is order-1 symbols; any length fits
        self.tokenizer_id = "char:" + hashlib.sha1(alphabet.encode()).hexdigest()[:12]

    @classmethod
    def fit(
        cls, texts: list[str], order: int = 5, discount: float = 0.75, max_alphabet: int = 96, name: str = "ngram"
    ) -> "NgramLM":
        if not any(texts):
            raise NeumoError("the n-gram model needs at least one non-empty training text")
        if not 0.0 < discount < 1.0:
            raise NeumoError(f"The 'discount' parameter must lie in (0, 1). Got {discount!r} instead.")
        alphabet = char_alphabet(texts, max_alphabet)
        index = {c: i for i, c in enumerate(alphabet)}
        seqs = [np.array([index.get(c, 0) for c in t], np.int64) for t in texts]
        V = len(alphabet) + 1
        return cls(alphabet, NgramCounts.fit(seqs, V, order, pad_id=V - 1), discount, name)

    @property
    def order(self) -> int:
        return self.counts.order

    @property
    def context_len(self) -> int:
        """Tokens that determine the last position's prediction (generation feeds only these)."""
        return self.counts.order

    def encode(self, text: str) -> tuple[list[int], list[str]]:
        return [self.index.get(c, 0) for c in text], list(text)

    def id_to_piece(self, i: int) -> str:
        return "" if i == self.bos_id else self.alphabet[i]

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, T = ids.shape
        k = self.order - 1
        x = ids.detach().cpu().numpy().astype(np.int64)
        x = np.concatenate([np.full((B, k), self.bos_id, np.int64), x], axis=1)  # (B, k+T)
        hist = np.stack([x[:, j + 1 : j + 1 + T] for j in range(k)], axis=-1) if k else np.zeros((B, T, 0), np.int64)
        p = self.counts.probs(hist.reshape(B * T, k), self.discount)  # (B*T, V)
        return torch.from_numpy(np.log(p)).to(torch.float32).view(B, T, self.vocab_size)
