"""Top-k eigenpairs of an operator from a cheaper surrogate of it, refined and certified with exact products.

:func:`lanczos_refined` runs Lanczos on ``surrogate`` (for instance ``HessianOperator(..., precision="bf16")``),
then one Rayleigh-Ritz step with ``op`` on the span V of the surrogate's top k + ``extra`` Ritz vectors:
W = op V (k + extra exact products), the eigenpairs (theta, S) of V^T W, Ritz vectors X = V S. Because W is
exact, the residuals r_i = ||op x_i - theta_i x_i|| = ||W s_i - theta_i x_i|| are the true ones (not a Lanczos
estimate), and each eigenvalue error is bounded by e_i = min(r_i, r_i^2 / gap_i) as in
:func:`~neumo.spectral.curvature.lanczos.lanczos`, gap_i taken to the other refined values and to the
surrogate's next Ritz value (the rest of the spectrum). Pairs with e_i > tol |theta_i| get their residual
added to the basis (one exact product each) and the Rayleigh-Ritz step is repeated, at most
``refinements`` times; ``converged`` says whether every bound met ``tol`` in the end.

The eigenvalues are those of ``op`` restricted to V, so their error is quadratic in the surrogate's
eigenvector error: a bf16 surrogate (about 2^-8 relative) gives float32-level eigenvalues of the top
outliers. Whether it pays depends on how much cheaper a surrogate product is (bench/README.md).
"""

from __future__ import annotations

import torch

from neumo.errors import NeumoError, check_choice
from neumo.spectral.curvature.lanczos import WHICH, EigenResult, _order, eigenvalue_error_bound, lanczos


def _check_pair(op, surrogate) -> None:
    if op.size != surrogate.size:
        raise NeumoError(
            f"the surrogate has size {surrogate.size} but the operator {op.size}: they must act on one space"
        )


def _rayleigh_ritz(V: torch.Tensor, W: torch.Tensor, which: str):
    """Ritz values (ordered by ``which``), Ritz vectors and residual vectors of op on span(V) (V orthonormal
    columns, W = op V)."""
    T = (V.T @ W).double()
    theta, S = torch.linalg.eigh((T + T.T) / 2)
    order = _order(theta, which)
    theta, S = theta[order], S[:, order].to(V.dtype)
    X = V @ S
    return theta, X, W @ S - X * theta.to(V.dtype)


def lanczos_refined(
    op,
    surrogate,
    k: int = 1,
    which: str = "LA",
    *,
    tol: float = 1e-6,
    extra: int = 0,
    refinements: int = 2,
    max_iter: int | None = None,
    seed: int | torch.Generator = 0,
    return_vectors: bool = True,
) -> EigenResult:
    """Top-k eigenpairs of ``op`` (``which``: LA, SA, LM) from Lanczos on ``surrogate``, refined with ``op``.

    The surrogate stage stops by the eigenvalue criterion at ``tol`` (or after ``max_iter`` steps, the default
    of :func:`lanczos`); ``extra`` more Ritz vectors widen the refinement basis. ``matvecs`` counts the exact
    products only (the surrogate's are in ``surrogate.matvecs``); ``residuals`` are exact."""
    check_choice("which", which, WHICH)
    _check_pair(op, surrogate)
    if not 1 <= k <= op.size:
        raise NeumoError(f"The 'k' parameter must be in [1, {op.size}] (the operator size). Got {k} instead.")
    if extra < 0 or refinements < 0:
        raise NeumoError(f"extra and refinements must be >= 0; got extra={extra}, refinements={refinements}")
    m = min(k + extra, op.size)
    # one more Ritz value than the basis keeps, so that the smallest kept value has a gap estimate
    sur = lanczos(
        surrogate, k=min(m + 1, op.size), which=which, tol=tol, max_iter=max_iter, seed=seed, criterion="eigenvalue"
    )
    assert sur.eigenvectors is not None
    beyond = sur.eigenvalues[m:]  # the surrogate's view of the rest of the spectrum
    V = torch.linalg.qr(sur.eigenvectors[:, :m].to(op.dtype))[0]
    start = op.matvecs
    W = torch.stack([op.matvec(V[:, i].contiguous()) for i in range(V.shape[1])], 1)
    idx = torch.arange(k)
    for round_ in range(refinements + 1):
        theta, X, R = _rayleigh_ritz(V, W, which)
        res = torch.linalg.vector_norm(R.double(), dim=0)
        bound = eigenvalue_error_bound(torch.cat([theta, beyond.to(theta.dtype)]), idx, res[:k])
        bad = (bound > tol * theta[:k].abs()).nonzero().flatten()
        if bad.numel() == 0 or round_ == refinements or V.shape[1] + bad.numel() > op.size:
            break
        R = R[:, bad]
        for _ in range(2):  # the new directions, orthogonal to the basis (twice is enough)
            R = R - V @ (V.T @ R)
        Rq = torch.linalg.qr(R)[0]
        V = torch.cat([V, Rq], 1)
        W = torch.cat([W, torch.stack([op.matvec(Rq[:, i].contiguous()) for i in range(Rq.shape[1])], 1)], 1)
    return EigenResult(
        eigenvalues=theta[:k].clone(),
        eigenvectors=X[:, :k].clone() if return_vectors else None,
        residuals=res[:k].clone(),
        matvecs=op.matvecs - start,
        iterations=sur.iterations,
        converged=bad.numel() == 0,
        which=which,
    )


__all__ = ["lanczos_refined"]
