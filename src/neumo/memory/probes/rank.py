"""Effective rank of hidden states (centred), using the spectral instrument's rank functions."""

from __future__ import annotations

import torch

from neumo.ranks import matrix_ranks


def hidden_effective_rank(hidden, eps: float = 0.01, center: bool = True) -> dict[str, float]:
    """hidden (..., D) flattened to (N, D); returns energy / stable / entropy rank and participation ratio."""
    h = torch.as_tensor(hidden, dtype=torch.float64).reshape(-1, torch.as_tensor(hidden).shape[-1])
    if center:
        h = h - h.mean(0, keepdim=True)
    return matrix_ranks(h, eps=eps)
