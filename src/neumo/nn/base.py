"""What every neumo sequence model promises, so probes and benches can treat them alike."""

from __future__ import annotations

import torch
from torch import nn

from neumo.errors import NeumoError

MEMORY_ROLES = ("working", "short_term", "long_term")


class SequenceModel(nn.Module):
    """Base for sequence models: ``forward(ids)`` -> logits ``(B, T, out_dim)``.

    ``forward(ids, return_memory=True)`` returns ``(logits, memory)`` where ``memory`` maps each tensor
    name of :meth:`memory_spec` to its value for this input (e.g. ``"hidden"``: ``(B, T, H)``).
    """

    def state_size(self, seq_len: int) -> int:
        """Number of floats the model carries from one position to the next at length ``seq_len``."""
        raise NotImplementedError

    def memory_spec(self) -> dict[str, list[str]]:
        """Names of the memory tensors by role: ``working``, ``short_term``, ``long_term``."""
        raise NotImplementedError

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def check_ids(ids: torch.Tensor, vocab_size: int) -> None:
    if ids.dim() != 2:
        raise NeumoError(f"expected token ids of shape (batch, time), got {tuple(ids.shape)}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise NeumoError(f"token ids must lie in [0, {vocab_size}); got range [{int(ids.min())}, {int(ids.max())}]")
