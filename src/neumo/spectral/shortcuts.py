"""Effective ranks of a matrix without a full SVD, where the shortcut is exact.

- stable rank = ||A||_F^2 / sigma_max^2, sigma_max by Lanczos on the Gram matrix;
- participation ratio = ||A||_F^4 / ||A^T A||_F^2 (one Gram product: sum sigma^4 = ||A^T A||_F^2);
- energy rank: top-k values by Lanczos for k = block, 2 block, ... until their energy reaches the known
  total ||A||_F^2 (1 - eps); falls back to the exact SVD when k would exceed half of min(m, n).
The entropy rank needs every singular value (it is on sigma, not sigma^2) and has no shortcut.
"""

from __future__ import annotations

import torch

from neumo.spectral.linalg import singular_values
from neumo.spectral.ranks import _check_eps, energy_rank


def _f64(A) -> torch.Tensor:
    return torch.as_tensor(A).detach().to(torch.float64)


def sigma_max(A, tol: float = 1e-12, seed: int = 0) -> float:
    return float(singular_values(_f64(A), k=1, method="lanczos", tol=tol, seed=seed).values[0])


def stable_rank_fast(A, seed: int = 0) -> float:
    A = _f64(A)
    top = sigma_max(A, seed=seed)
    return 0.0 if top == 0 else float((A**2).sum()) / top**2


def participation_ratio_fast(A) -> float:
    A = _f64(A)
    gram = A @ A.T if A.shape[0] < A.shape[1] else A.T @ A
    fro2 = float((A**2).sum())
    den = float((gram**2).sum())
    return 0.0 if den == 0 else fro2**2 / den


def energy_rank_fast(A, eps: float = 0.01, block: int = 16, seed: int = 0) -> float:
    _check_eps(eps)
    A = _f64(A)
    total = float((A**2).sum())
    if total == 0:
        return 0.0
    small = min(A.shape)
    k = min(block, small)
    while 2 * k <= small:
        s = singular_values(A, k=k, method="lanczos", tol=1e-12, seed=seed).values
        cum = torch.cumsum(s.to(torch.float64) ** 2, 0)
        target = (1 - eps) * total * (1 - 1e-12)
        if float(cum[-1]) >= target:
            # the cut-off lies within the top k: compare their cumulative energy with the known total
            return float(int(torch.searchsorted(cum, torch.tensor([target], dtype=cum.dtype))) + 1)
        k *= 2
    return energy_rank(torch.linalg.svdvals(A), eps)


__all__ = ["sigma_max", "stable_rank_fast", "participation_ratio_fast", "energy_rank_fast"]
