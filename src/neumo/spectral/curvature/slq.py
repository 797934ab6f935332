"""Spectral density by stochastic Lanczos quadrature (Golub & Meurant; Ghorbani et al. 2019).

For each probe v (Rademacher, normalised) an m-step Lanczos run gives a Gauss quadrature rule
(nodes theta_i, weights tau_i = S[0, i]^2) with sum_i tau_i theta_i^j = v^T A^j v exactly for
j <= 2m - 1. Averaging the rules over probes estimates the normalised spectral measure
(1/n) sum_i delta(lambda_i).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from neumo.errors import check_positive
from neumo.seeding import as_generator
from neumo.spectral.curvature.lanczos import eigh_tridiagonal, lanczos_basis


@dataclass(frozen=True)
class SpectralDensity:
    nodes: list[torch.Tensor]  # per probe: (m_p,) Ritz values
    weights: list[torch.Tensor]  # per probe: (m_p,) quadrature weights summing to 1
    matvecs: int
    steps: int

    def moment(self, j: int) -> float:
        """Estimate of (1/n) tr(A^j)."""
        return float(sum((w * t**j).sum() for t, w in zip(self.nodes, self.weights)) / len(self.nodes))

    def density(self, grid: torch.Tensor, sigma: float) -> torch.Tensor:
        """The measure smoothed by a Gaussian of width ``sigma`` on ``grid`` (integrates to ~1)."""
        grid = torch.as_tensor(grid, dtype=torch.float64)
        out = torch.zeros_like(grid)
        for t, w in zip(self.nodes, self.weights):
            z = (grid[:, None] - t[None, :]) / sigma
            out += (w[None, :] * torch.exp(-0.5 * z**2)).sum(1) / (sigma * (2 * torch.pi) ** 0.5)
        return out / len(self.nodes)


def slq(op, n_probes: int = 8, steps: int = 40, seed: int | torch.Generator = 0) -> SpectralDensity:
    check_positive("n_probes", n_probes)
    check_positive("steps", steps)
    g = as_generator(seed, "slq")
    nodes, weights = [], []
    start = op.matvecs
    for _ in range(n_probes):
        v = torch.randint(0, 2, (op.size,), generator=g).to(torch.float64) * 2 - 1
        _, alpha, beta = lanczos_basis(op, v.to(device=op.device, dtype=op.dtype), steps)
        theta, S = eigh_tridiagonal(alpha, beta)
        nodes.append(theta)
        weights.append(S[0] ** 2)
    return SpectralDensity(nodes=nodes, weights=weights, matvecs=op.matvecs - start, steps=steps)
