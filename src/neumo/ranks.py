"""Effective ranks of a spectrum: pure functions on singular values (or eigenvalues).

Every function takes a 1-D spectrum ``s`` (tensor, array or list) and returns a float. Inputs are
promoted to float64 and their magnitudes are used: for singular values this changes nothing.

- ``energy_rank(s, eps)``: the smallest r with sum_{i<=r} s_i^2 >= (1 - eps) sum_i s_i^2 (on s^2,
  sorted descending). ``eps=0`` gives the number of non-zero values (up to rounding).
- ``stable_rank(s)``: sum s^2 / max s^2 (on s^2).
- ``entropy_rank(s)``: exp(-sum p log p) with p = s / sum s (on s, Roy & Vetterli 2007).
- ``participation_ratio(s)``: (sum s^2)^2 / sum s^4 (on s^2).
- ``nuclear_rank(s)``: sum s / max s = ||A||_* / ||A||_2 (on s; outside ``RANK_NAMES``).

Each lies in [1, number of non-zero values], equals n on n equal values and 1 on a single one, and is
scale invariant. An all-zero (or empty) spectrum has every rank 0.

Indefinite spectra (Hessian eigenvalues) follow a convention chosen with :func:`eigen_ranks`:
``"abs"`` (ranks of |lambda|, the default) or ``"positive"`` (ranks of max(lambda, 0)); in both cases
the negative mass sum_{lambda<0} lambda^2 / sum lambda^2 is reported separately.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from neumo.errors import NeumoError

RANK_NAMES = ("energy_rank", "stable_rank", "entropy_rank", "participation_ratio")


def _as_spectrum(s) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(s) if not torch.is_tensor(s) else s.detach())
    t = t.to(device="cpu", dtype=torch.float64).abs()
    if t.dim() != 1:
        raise NeumoError(f"a spectrum must be 1-D; got shape {tuple(t.shape)} (use matrix_ranks for matrices)")
    if not torch.isfinite(t).all():
        raise NeumoError("the spectrum holds NaN or inf values; check the matrix it came from")
    return t


def _normalised(s) -> torch.Tensor:
    """|s| / max|s| so that squaring never underflows or overflows (ranks are scale invariant)."""
    t = _as_spectrum(s)
    top = t.max() if t.numel() else torch.tensor(0.0, dtype=torch.float64)
    return t / top if top > 0 else t


def _check_eps(eps: float) -> None:
    if not 0.0 <= eps < 1.0:
        raise NeumoError(f"The 'eps' parameter must be in [0, 1). Got {eps!r} instead.")


def energy_rank(s, eps: float = 0.01) -> float:
    """Smallest r whose top-r squared values hold a (1 - eps) share of the total energy."""
    _check_eps(eps)
    return _energy_rank(_normalised(s), eps)


def _energy_rank(t: torch.Tensor, eps: float) -> float:
    e = torch.sort(t**2, descending=True).values
    if e.numel() == 0 or e[0] == 0:
        return 0.0
    cum = torch.cumsum(e, 0)
    # relative slack so that rounding in the cumulative sum never adds a spurious index
    target = (1.0 - eps) * cum[-1] * (1.0 - 1e-12)
    return float(int(torch.searchsorted(cum, target.reshape(1)).item()) + 1)


def stable_rank(s) -> float:
    """sum s^2 / s_max^2 (0 for an all-zero spectrum)."""
    return _stable_rank(_normalised(s))


def _stable_rank(t: torch.Tensor) -> float:
    e = t**2
    return 0.0 if e.numel() == 0 or e.max() == 0 else float(e.sum() / e.max())


def nuclear_rank(s) -> float:
    """sum s / s_max = ||A||_* / ||A||_2 on singular values (0 for an all-zero spectrum). Not one of
    ``RANK_NAMES``: it weighs the tail linearly, between the stable rank (on s^2) and the count of non-zeros."""
    e = _normalised(s)
    return 0.0 if e.numel() == 0 or e.max() == 0 else float(e.sum() / e.max())


def entropy_rank(s) -> float:
    """exp of the Shannon entropy of p = s / sum s (zeros contribute 0 log 0 = 0)."""
    return _entropy_rank(_normalised(s))


def _entropy_rank(t: torch.Tensor) -> float:
    total = t.sum()
    if total == 0:
        return 0.0
    p = t[t > 0] / total
    return float(torch.exp(-(p * torch.log(p)).sum()))


def participation_ratio(s) -> float:
    """(sum s^2)^2 / sum s^4 (0 for an all-zero spectrum)."""
    return _participation_ratio(_normalised(s))


def _participation_ratio(t: torch.Tensor) -> float:
    e = t**2
    if e.numel() == 0 or e.max() == 0:
        return 0.0
    return float(e.sum() ** 2 / (e**2).sum())


def spectrum_ranks(s, eps: float = 0.01) -> dict[str, float]:
    """All four ranks of one spectrum (normalised once; each value equals its function's)."""
    _check_eps(eps)
    t = _normalised(s)
    return {
        "energy_rank": _energy_rank(t, eps),
        "stable_rank": _stable_rank(t),
        "entropy_rank": _entropy_rank(t),
        "participation_ratio": _participation_ratio(t),
    }


def eigen_ranks(lams, eps: float = 0.01, convention: Literal["abs", "positive"] = "abs") -> dict[str, float]:
    """Ranks of an indefinite spectrum plus ``negative_mass`` (share of sum lambda^2 that is negative)."""
    lam = torch.as_tensor(np.asarray(lams) if not torch.is_tensor(lams) else lams.detach()).double().cpu()
    if convention not in ("abs", "positive"):
        raise NeumoError(f"The 'convention' parameter must be 'abs' or 'positive'. Got {convention!r} instead.")
    total = (lam**2).sum()
    neg = float((lam.clamp(max=0) ** 2).sum() / total) if total > 0 else 0.0
    s = lam.abs() if convention == "abs" else lam.clamp(min=0)
    return {**spectrum_ranks(s, eps), "negative_mass": neg}


def as_matrix(w: torch.Tensor) -> torch.Tensor:
    """A weight as a 2-D matrix: (out, in * kh * kw ...) for conv kernels, (1, n) for vectors."""
    w = w.detach()
    if w.dim() == 0:
        raise NeumoError("a scalar parameter has no spectrum; select matrices or vectors")
    return w.reshape(1, -1) if w.dim() == 1 else w.reshape(w.shape[0], -1)


def matrix_ranks(A, eps: float = 0.01) -> dict:
    """The four ranks of a matrix (dict of floats) or of a batch (..., m, n) (dict of float64 tensors (...))."""
    _check_eps(eps)
    A = torch.as_tensor(A)
    if A.dim() < 2:
        raise NeumoError(f"matrix_ranks needs a matrix or a batch (..., m, n); got shape {tuple(A.shape)}")
    s = torch.linalg.svdvals(A.detach().to(torch.float64))  # (..., min(m, n))
    if A.dim() == 2:
        return spectrum_ranks(s, eps)
    flat = s.reshape(-1, s.shape[-1])
    rows = [spectrum_ranks(v, eps) for v in flat]
    return {k: torch.tensor([r[k] for r in rows], dtype=torch.float64).reshape(s.shape[:-1]) for k in RANK_NAMES}


def matrix_stable_rank(w: torch.Tensor) -> float:
    """Stable rank of a weight (reshaped by :func:`as_matrix`), by exact singular values."""
    return stable_rank(torch.linalg.svdvals(as_matrix(w).to(torch.float64)))


__all__ = [
    "RANK_NAMES",
    "energy_rank",
    "stable_rank",
    "nuclear_rank",
    "entropy_rank",
    "participation_ratio",
    "spectrum_ranks",
    "eigen_ranks",
    "matrix_ranks",
    "matrix_stable_rank",
    "as_matrix",
]
