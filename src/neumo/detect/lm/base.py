"""The one interface every scoring model implements: tokenize with exact text pieces, forward to logits.

A ``CausalLM`` maps a text to token ids *and* to the exact substring each token covers, so that joining
the pieces reproduces the text (what the explanation and the heat map show). ``forward`` takes a padded
batch and returns next-token logits for every position; scoring code never needs to know the backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class CausalLM(ABC):
    """A causal language model with its tokenizer.

    Attributes: ``name`` (shown in results), ``vocab_size``, ``hidden_size`` (d of the logit layer's input),
    ``max_len`` (context window in tokens, including the start token), ``bos_id`` (prepended so that the
    first text token is scored too; ``None`` when the model has no start token), ``pad_id``,
    ``tokenizer_id`` (two models can share a scoring pass, e.g. Binoculars, only if these are equal),
    ``precision`` (the arithmetic of the forward pass: ``fp32``, or ``bf16`` / ``int8`` for Hugging Face models).
    """

    name: str
    vocab_size: int
    hidden_size: int
    max_len: int
    bos_id: int | None
    pad_id: int
    tokenizer_id: str
    precision: str = "fp32"

    @abstractmethod
    def encode(self, text: str) -> tuple[list[int], list[str]]:
        """Token ids and the exact substring each one covers (``"".join(pieces) == text`` when possible)."""

    @abstractmethod
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids, mask (B, T) -> logits (B, T, V); row t predicts token t+1. Padding sits on the right."""

    def decode(self, ids) -> str:
        return "".join(self.id_to_piece(int(i)) for i in ids)

    def id_to_piece(self, i: int) -> str:  # pragma: no cover - overridden where generation is needed
        raise NotImplementedError(f"{self.name} cannot decode single tokens")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, vocab={self.vocab_size}, d={self.hidden_size})"


def contiguous_pieces(text: str, starts: list[int]) -> list[str]:
    """Pieces that tile ``text``: token i covers [starts[i], starts[i+1]); the first starts at 0.

    Tokenizers drop or merge whitespace in their offsets; giving each gap to the preceding token keeps
    ``"".join(pieces) == text`` exactly.
    """
    if not starts:
        return []
    bounds = [0] + list(starts[1:]) + [len(text)]
    return [text[bounds[i] : bounds[i + 1]] for i in range(len(starts))]


def char_alphabet(texts: list[str], size: int = 96) -> str:
    """The character alphabet of a character-level scoring model: unknown (``"\\0"``, id 0) + the ``size - 1``
    most frequent characters of ``texts``, sorted (:class:`neumo.data.text.CharTokenizer`'s rule)."""
    from neumo.data.text import CharTokenizer

    return CharTokenizer.fit("".join(texts).replace("\0", ""), max_size=size).alphabet
