"""Subspaces: principal angles and overlap between column spans; PCA of stacked flattened updates."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from neumo.errors import NeumoError


def _basis(A: torch.Tensor) -> torch.Tensor:
    A = torch.as_tensor(A).detach().double()
    if A.dim() != 2:
        raise NeumoError(f"a subspace is given by a (dim, k) matrix of column vectors; got shape {tuple(A.shape)}")
    return torch.linalg.qr(A).Q


def principal_angles(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Principal angles (radians, ascending) between span(A) and span(B), both (dim, k)."""
    Qa, Qb = _basis(A), _basis(B)
    if Qa.shape[0] != Qb.shape[0]:
        raise NeumoError(f"subspaces live in different dimensions: {Qa.shape[0]} vs {Qb.shape[0]}")
    cos = torch.linalg.svdvals(Qa.T @ Qb).clamp(-1, 1)
    return torch.arccos(cos)


def subspace_overlap(A: torch.Tensor, B: torch.Tensor) -> float:
    """||Q_A^T Q_B||_F^2 / min(k_A, k_B): 1 when one span contains the other, 0 when orthogonal."""
    Qa, Qb = _basis(A), _basis(B)
    return float((Qa.T @ Qb).pow(2).sum() / min(Qa.shape[1], Qb.shape[1]))


@dataclass(frozen=True)
class PCAResult:
    explained_variance_ratio: torch.Tensor  # (r,) descending, sums to 1
    components: torch.Tensor  # (r, P) principal directions (rows)
    singular_values: torch.Tensor  # (r,)

    @property
    def cumulative(self) -> torch.Tensor:
        return torch.cumsum(self.explained_variance_ratio, 0)

    def n_components(self, share: float) -> int:
        """Fewest components explaining at least ``share`` of the variance."""
        return int(torch.searchsorted(self.cumulative, torch.tensor([share * (1 - 1e-12)], dtype=torch.float64))) + 1


def update_pca(updates, center: bool = True) -> PCAResult:
    """PCA of T updates (a (T, ...) tensor or a list of tensors), each flattened to one row."""
    X = torch.stack([torch.as_tensor(u).detach().reshape(-1).double() for u in updates])
    if X.shape[0] < 2:
        raise NeumoError("PCA needs at least two updates")
    if center:
        X = X - X.mean(0, keepdim=True)
    _, s, vh = torch.linalg.svd(X, full_matrices=False)
    var = s**2
    ratio = var / var.sum() if var.sum() > 0 else var
    return PCAResult(ratio, vh, s)


def top_right_singular_vectors(M: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-``k`` eigenpairs of ``M^T M`` for a wide factor ``M`` (rows, P), from the small Gram ``M M^T``:
    ``(eigenvalues (k,), vectors (P, k))`` with ``v = M^T u / sqrt(lambda)`` (float64). The top-k eigenspace of
    a parameter-space operator written as ``M^T M`` (J^T J, J^T H J = (H^1/2 J)^T (H^1/2 J), G^T G)."""
    M = torch.as_tensor(M).detach().double()
    if M.dim() != 2 or not 1 <= int(k) <= min(M.shape):
        raise NeumoError(
            f"The 'k' parameter must be between 1 and min{tuple(M.shape)} for a 2-D factor. "
            f"Got k={k} for shape {tuple(M.shape)} instead."
        )
    lam, U = torch.linalg.eigh(M @ M.T)
    lam, U = lam.flip(0)[:k], U.flip(1)[:, :k]
    if float(lam[-1]) <= 0:
        raise NeumoError(f"the factor has rank below k={k}; ask for fewer directions")
    return lam, (M.T @ U) / lam.sqrt()


__all__ = ["principal_angles", "subspace_overlap", "top_right_singular_vectors", "update_pca", "PCAResult"]
