"""Effective ranks of a spectrum (minimal version from the foundation; the spectral instrument extends it)."""

from __future__ import annotations

import torch


def stable_rank(s: torch.Tensor) -> float:
    """sum sigma^2 / sigma_1^2 from singular values ``s`` (0 for an all-zero spectrum)."""
    s = torch.as_tensor(s, dtype=torch.float64).abs()
    top = s.max() if s.numel() else torch.tensor(0.0)
    return 0.0 if top == 0 else float((s ** 2).sum() / top ** 2)


def matrix_stable_rank(w: torch.Tensor) -> float:
    return stable_rank(torch.linalg.svdvals(w.detach().to(torch.float64).reshape(w.shape[0], -1)))
