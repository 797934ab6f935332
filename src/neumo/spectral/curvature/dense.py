"""Small helpers over operators: the dense matrix (for oracles) and projections onto eigenvectors."""

from __future__ import annotations

import torch


def dense_matrix(op) -> torch.Tensor:
    """The (size x size) matrix of ``op`` by ``size`` products with the unit vectors (tiny problems only)."""
    eye = torch.eye(op.size, dtype=op.dtype, device=op.device)
    return torch.stack([op.matvec(eye[i]) for i in range(op.size)], 1)


def gradient_fraction(g: torch.Tensor, vectors: torch.Tensor) -> float:
    """||P g||^2 / ||g||^2 for P the projector on the span of the columns of ``vectors`` (size, k)."""
    Q, _ = torch.linalg.qr(vectors.double())
    g = g.double().reshape(-1)
    den = float(g @ g)
    return 0.0 if den == 0 else float(((Q.T @ g) ** 2).sum() / den)
