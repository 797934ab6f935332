"""Trace estimators: Hutchinson (Rademacher probes) and Hutch++ (Meyer, Musco, Musco & Woodruff 2021).

Hutchinson: tr(A) ~ mean_i z_i^T A z_i; the variance is 2 (||A||_F^2 - sum_i A_ii^2) per probe, and the
reported ``stderr`` is the sample standard deviation / sqrt(n). Hutch++ spends m/3 products on a sketch
Q of A's range, computes tr(Q^T A Q) exactly and Hutchinson's estimate on the deflated rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from neumo.errors import NeumoError
from neumo.seeding import as_generator


@dataclass(frozen=True)
class TraceEstimate:
    estimate: float
    stderr: float  # standard error of the stochastic part (0 when exact)
    matvecs: int
    n_probes: int


def _rademacher(n: int, k: int, g: torch.Generator, like) -> torch.Tensor:
    return (torch.randint(0, 2, (n, k), generator=g).to(torch.float64) * 2 - 1).to(like.device, like.dtype)


def _apply(op, V: torch.Tensor) -> torch.Tensor:
    return torch.stack([op.matvec(V[:, i]) for i in range(V.shape[1])], 1)


def hutchinson(op, n_probes: int = 30, seed: int | torch.Generator = 0) -> TraceEstimate:
    if n_probes < 2:
        raise NeumoError(f"The 'n_probes' parameter must be >= 2 (for a standard error). Got {n_probes} instead.")
    g = as_generator(seed, "hutchinson")
    start = op.matvecs
    Z = _rademacher(op.size, n_probes, g, torch.empty(0, dtype=op.dtype, device=op.device))
    samples = (Z * _apply(op, Z)).sum(0).double()
    return TraceEstimate(float(samples.mean()), float(samples.std() / n_probes**0.5), op.matvecs - start, n_probes)


def hutchpp(op, n_matvecs: int = 30, seed: int | torch.Generator = 0) -> TraceEstimate:
    """Hutch++ with ``n_matvecs`` products (a multiple of 3 is used: k = n_matvecs // 3)."""
    k = n_matvecs // 3
    if k < 2:
        raise NeumoError(f"The 'n_matvecs' parameter must be >= 6 for Hutch++. Got {n_matvecs} instead.")
    g = as_generator(seed, "hutchpp")
    start = op.matvecs
    like = torch.empty(0, dtype=op.dtype, device=op.device)
    S, G = _rademacher(op.size, k, g, like), _rademacher(op.size, k, g, like)
    Q, _ = torch.linalg.qr(_apply(op, S))
    exact = float(torch.trace(Q.T @ _apply(op, Q)))
    G = G - Q @ (Q.T @ G)
    samples = (G * _apply(op, G)).sum(0).double()
    return TraceEstimate(exact + float(samples.mean()), float(samples.std() / k**0.5), op.matvecs - start, k)
