"""Singular values of a matrix: ``exact | randomized | lanczos | auto``.

- ``exact``: ``torch.linalg.svdvals`` (all values).
- ``randomized``: Halko, Martinsson & Tropp (2011) range finder with ``oversample`` extra columns and
  ``n_iter`` QR-stabilised power iterations; pass the previous result's ``basis`` as ``warm`` to start
  from its right singular vectors (cheap tracking of a slowly changing matrix).
- ``lanczos``: top-k eigenvalues of the smaller Gram matrix (A^T A or A A^T) by Lanczos with full
  reorthogonalisation; sigma = sqrt(lambda). Accurate for the leading values.
- ``auto``: ``exact`` when all values are wanted or the matrix is small (min(m, n) <= 512) or k is
  more than 1/8 of min(m, n); ``lanczos`` otherwise.

Weights are matrices by :func:`weight_matrix`: a conv kernel (out, in, kh, kw) becomes
(out, in * kh * kw) (``out_by_rest``, the default) or a batch of kh * kw (out, in) matrices (``per_tap``).
Computation happens in ``dtype`` (default: the input's dtype, float32 promoted for half types).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from neumo.errors import NeumoError, check_choice
from neumo.seeding import as_generator
from neumo.spectral.curvature.lanczos import lanczos
from neumo.spectral.curvature.operators import Operator
from neumo.spectral.ranks import as_matrix

METHODS = ("exact", "randomized", "lanczos", "auto")
AUTO_EXACT_MAX_DIM = 512


@dataclass(frozen=True)
class SVDResult:
    values: torch.Tensor            # (k,) descending
    method: str                     # the method that ran (``auto`` resolved)
    basis: torch.Tensor | None = None  # (n, l) right singular vectors, to warm-start ``randomized``
    converged: bool = True


def weight_matrix(w: torch.Tensor, policy: str = "out_by_rest") -> torch.Tensor:
    """A parameter as a matrix (or batch of matrices) by the documented reshape policy."""
    check_choice("policy", policy, ("out_by_rest", "per_tap"))
    if policy == "per_tap" and w.dim() > 2:
        return w.detach().reshape(w.shape[0], w.shape[1], -1).permute(2, 0, 1)  # (taps, out, in)
    return as_matrix(w)


class GramOperator(Operator):
    """x -> A^T A x (or A A^T x when A is wide), the smaller of the two Gram matrices."""

    def __init__(self, A: torch.Tensor):
        super().__init__()
        self.A = A
        self.wide = A.shape[0] < A.shape[1]
        self.size = min(A.shape)
        self.dtype, self.device = A.dtype, A.device

    def _matvec(self, v):
        return self.A @ (self.A.T @ v) if self.wide else self.A.T @ (self.A @ v)


def _resolve(method: str, k: int | None, m: int, n: int) -> str:
    if method != "auto":
        return method
    small = min(m, n)
    if k is None or small <= AUTO_EXACT_MAX_DIM or k > small // 8:
        return "exact"
    return "lanczos"


def _randomized(A, k, oversample, n_iter, warm, seed):
    m, n = A.shape
    ell = min(k + oversample, min(m, n))
    if warm is not None:
        if warm.shape[0] != n:
            raise NeumoError(f"the warm-start basis has {warm.shape[0]} rows but the matrix has {n} columns")
        omega = warm[:, :ell].to(A.dtype)
        if omega.shape[1] < ell:  # pad with fresh directions
            g = as_generator(seed, "randomized-svd-pad")
            extra = torch.randn(n, ell - omega.shape[1], generator=g, dtype=torch.float64).to(A.dtype)
            omega = torch.cat([omega, extra], 1)
    else:
        g = as_generator(seed, "randomized-svd")
        omega = torch.randn(n, ell, generator=g, dtype=torch.float64).to(A.device, A.dtype)
    Q, _ = torch.linalg.qr(A @ omega)                    # (m, l)
    for _ in range(n_iter):
        Z, _ = torch.linalg.qr(A.T @ Q)                  # (n, l)
        Q, _ = torch.linalg.qr(A @ Z)
    _, s, vh = torch.linalg.svd(Q.T @ A, full_matrices=False)   # (l, n) small SVD
    return s[:k], vh.T


def singular_values(A: torch.Tensor, k: int | None = None, method: str = "auto", *,
                    dtype: torch.dtype | None = None, oversample: int = 10, n_iter: int = 4,
                    warm: torch.Tensor | None = None, tol: float = 1e-8,
                    seed: int | torch.Generator = 0) -> SVDResult:
    """The top-k (all when ``k`` is None) singular values of a 2-D matrix, descending."""
    check_choice("method", method, METHODS)
    A = torch.as_tensor(A).detach()
    if A.dim() != 2:
        raise NeumoError(f"singular_values needs a 2-D matrix; got shape {tuple(A.shape)} (see weight_matrix)")
    m, n = A.shape
    if k is not None and not 1 <= k <= min(m, n):
        raise NeumoError(f"The 'k' parameter must be in [1, {min(m, n)}]. Got {k} instead.")
    dtype = dtype or (A.dtype if A.dtype in (torch.float32, torch.float64) else torch.float32)
    A = A.to(dtype)
    chosen = _resolve(method, k, m, n)
    if chosen != "exact" and k is None:
        raise NeumoError(f"method {chosen!r} computes the top-k values: pass k (or use method='exact')")
    if chosen == "exact":
        s = torch.linalg.svdvals(A)
        return SVDResult(s if k is None else s[:k], "exact")
    assert k is not None   # refused above for every method but 'exact'
    if chosen == "randomized":
        s, basis = _randomized(A, k, oversample, n_iter, warm, seed)
        return SVDResult(s, "randomized", basis=basis)
    res = lanczos(GramOperator(A), k=k, which="LA", tol=tol, seed=seed, return_vectors=False,
                  max_iter=max(6 * k + 120, 200))
    return SVDResult(res.eigenvalues.clamp(min=0).sqrt().to(dtype), "lanczos", converged=res.converged)


__all__ = ["METHODS", "SVDResult", "singular_values", "weight_matrix", "GramOperator"]
