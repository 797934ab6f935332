"""Human text that ships inside the ``gensim`` wheel (no download), and a character tokenizer.

``lee_background`` (300 Australian news articles, 360 kB, Lee et al. 2005) and ``lee`` (50 more) sit in
``gensim/test/test_data/``. The folder is located with ``importlib.util.find_spec`` (gensim is never
imported: importing it is slow and not needed to read its data files).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch

from neumo.errors import MissingDependencyError, NeumoError
from neumo.seeding import make_generator

CORPORA = {"lee_background": "lee_background.cor", "lee": "lee.cor"}


def gensim_data_dir() -> Path:
    spec = importlib.util.find_spec("gensim")
    if spec is None or spec.origin is None:
        raise MissingDependencyError(
            "human text comes from the gensim wheel: pip install 'neumo[text]' (or pip install gensim)"
        )
    d = Path(spec.origin).parent / "test" / "test_data"
    if not d.is_dir():
        raise MissingDependencyError(f"gensim is installed but has no test data folder at {d}")
    return d


def human_documents(name: str = "lee_background") -> list[str]:
    """The documents of a shipped corpus, one string each (whitespace-normalised, non-empty)."""
    if name not in CORPORA:
        raise NeumoError(f"unknown corpus {name!r}; available: {', '.join(CORPORA)}")
    raw = (gensim_data_dir() / CORPORA[name]).read_text(encoding="utf-8", errors="replace")
    return [" ".join(line.split()) for line in raw.splitlines() if line.strip()]


@dataclass(frozen=True)
class CharTokenizer:
    """Characters <-> ids. Characters outside the alphabet map to ``unk`` (id 0)."""

    alphabet: str

    @classmethod
    def fit(cls, text: str, max_size: int = 96) -> "CharTokenizer":
        from collections import Counter

        common = [c for c, _ in Counter(text).most_common(max_size - 1)]
        return cls("\0" + "".join(sorted(common)))

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet)

    def encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.alphabet)}
        return torch.tensor([index.get(c, 0) for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.alphabet[int(i)] for i in ids)


def char_lm_batches(ids: torch.Tensor, seq_len: int, batch_size: int, seed: int):
    """``batch_fn(step) -> (x, y)``: random windows of a token stream, next-token targets."""
    if len(ids) <= seq_len + 1:
        raise NeumoError(f"text of {len(ids)} tokens is too short for windows of {seq_len}")

    def batch_fn(step: int):
        g = make_generator(seed, "char-lm", step)
        starts = torch.randint(0, len(ids) - seq_len - 1, (batch_size,), generator=g)
        win = torch.stack([ids[s : s + seq_len + 1] for s in starts.tolist()])
        return win[:, :-1], win[:, 1:]

    return batch_fn
