"""Singular values of a matrix: ``exact | randomized | lanczos | auto``.

- ``exact``: ``torch.linalg.svdvals`` (all values).
- ``randomized``: Halko, Martinsson & Tropp (2011) range finder with ``oversample`` extra columns and
  ``n_iter`` QR-stabilised power iterations; pass the previous result's ``basis`` as ``warm`` to start
  from its right singular vectors (cheap tracking of a slowly changing matrix).
- ``lanczos``: top-k eigenvalues of the smaller Gram matrix (A^T A or A A^T) by Lanczos with full
  reorthogonalisation; sigma = sqrt(lambda). Accurate for the leading values.
- ``auto``: never slower than ``exact`` by design, at the same accuracy. ``exact`` when all values are
  wanted, the matrix is small (min(m, n) <= 512) or k is more than 1/8 of min(m, n). Otherwise a probe
  (two products with 8 random vectors, 0.6% of an exact SVD at 1024^2) estimates the participation ratio
  PR = (sum s^2)^2 / sum s^4 of the spectrum: when PR > 4k the energy spreads over many more directions
  than asked for (a flat spectrum: the top-k are not separated and Lanczos needs hundreds of products),
  and below min(m, n) = 2048 such a Lanczos run is slower than the exact SVD (bench/spectral_svd.py),
  so ``exact`` runs. Otherwise ``lanczos`` with a bounded number of products; if it has not converged
  within them, ``exact`` runs instead (``method`` reports what produced the values).

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
AUTO_FLAT_LANCZOS_MIN_DIM = 2048  # flat spectra: Lanczos beats the exact SVD from here on (bench/spectral_svd.py)
AUTO_FLAT_PR_PER_K = 4  # "flat": participation ratio above this many times k
AUTO_PROBES = 8


@dataclass(frozen=True)
class SVDResult:
    values: torch.Tensor  # (k,) descending
    method: str  # the method that ran (``auto`` resolved)
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


def participation_ratio_estimate(A: torch.Tensor, probes: int = AUTO_PROBES, seed: int | torch.Generator = 0) -> float:
    """(sum s^2)^2 / sum s^4 of A's singular values, with sum s^4 = ||A^T A||_F^2 estimated by Hutchinson
    from ``probes`` Gaussian vectors (sum s^2 = ||A||_F^2 is exact). Cost: two (probes x m) x (m x n) products."""
    g = as_generator(seed, "svd-auto-probe")
    # A A^T and A^T A have the same non-zero eigenvalues, so the same ||.||_F^2 = sum s^4. Probing A A^T from
    # the left, (Z^T A) A^T, reads A row by row in both products; A^T (A Z) ran its first product on the
    # transposed layout and cost 5x as much (5.5 vs 1.1 ms at 1024^2: 2% of an exact SVD, now 0.4%).
    Z = torch.randn(probes, A.shape[0], generator=g, dtype=torch.float64).to(A.device, A.dtype)
    W = (Z @ A) @ A.T  # (probes, m): the rows are (A A^T z_i)^T
    s4 = float(torch.linalg.vector_norm(W)) ** 2 / probes  # an estimate: working precision is plenty
    s2 = float(torch.linalg.vector_norm(A)) ** 2
    return s2 * s2 / s4 if s4 > 0 else 0.0


def _resolve(method: str, k: int | None, A: torch.Tensor, seed) -> str:
    """The method ``auto`` stands for before any iteration (``lanczos`` may still fall back to ``exact``)."""
    if method != "auto":
        return method
    small = min(A.shape)
    if k is None or small <= AUTO_EXACT_MAX_DIM or k > small // 8:
        return "exact"
    if small < AUTO_FLAT_LANCZOS_MIN_DIM and participation_ratio_estimate(A, seed=seed) > AUTO_FLAT_PR_PER_K * k:
        return "exact"
    return "lanczos"


def _lanczos_budget(k: int, n: int) -> int:
    """Products of the Gram operator (of size ``n`` = min(m, n)) ``auto`` spends before it falls back to the
    exact SVD. One product costs 1/510 of an exact SVD at n = 2048 and 1/1570 at 4096 (CPU time, 3.9 ms vs
    2.0 s and 11.4 ms vs 17.9 s), so n / 8 products are at most about half of one from n = 2048 on. The
    top-32 of a flat (Gaussian) spectrum took 281 products at n = 2048 and 340 at 4096: a fixed 312 sent
    4096^2 to the fallback after the Lanczos time was spent (0.78x the exact SVD; bench/README.md)."""
    return max(6 * k + 120, 200, n // 8)


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
    Q, _ = torch.linalg.qr(A @ omega)  # (m, l)
    for _ in range(n_iter):
        Z, _ = torch.linalg.qr(A.T @ Q)  # (n, l)
        Q, _ = torch.linalg.qr(A @ Z)
    _, s, vh = torch.linalg.svd(Q.T @ A, full_matrices=False)  # (l, n) small SVD
    return s[:k], vh.T


def singular_values(
    A: torch.Tensor,
    k: int | None = None,
    method: str = "auto",
    *,
    dtype: torch.dtype | None = None,
    oversample: int = 10,
    n_iter: int = 4,
    warm: torch.Tensor | None = None,
    tol: float = 1e-8,
    seed: int | torch.Generator = 0,
) -> SVDResult:
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
    chosen = _resolve(method, k, A, seed)
    if chosen != "exact" and k is None:
        raise NeumoError(f"method {chosen!r} computes the top-k values: pass k (or use method='exact')")
    if chosen == "exact":
        s = torch.linalg.svdvals(A)
        return SVDResult(s if k is None else s[:k], "exact")
    assert k is not None  # refused above for every method but 'exact'
    if chosen == "randomized":
        s, basis = _randomized(A, k, oversample, n_iter, warm, seed)
        return SVDResult(s, "randomized", basis=basis)
    res = lanczos(
        GramOperator(A),
        k=k,
        which="LA",
        tol=tol,
        seed=seed,
        return_vectors=False,
        max_iter=_lanczos_budget(k, min(m, n)),
    )
    if method == "auto" and not res.converged:  # not within the budget: the exact values, at exact's accuracy
        return SVDResult(torch.linalg.svdvals(A)[:k], "exact")
    return SVDResult(res.eigenvalues.clamp(min=0).sqrt().to(dtype), "lanczos", converged=res.converged)


__all__ = ["METHODS", "SVDResult", "singular_values", "weight_matrix", "GramOperator", "participation_ratio_estimate"]
