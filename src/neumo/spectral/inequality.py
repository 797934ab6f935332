"""Inequality of neurons and connections: Gini coefficient, top-q share, Spearman correlation.

Pure functions on 1-D non-negative values. Known nulls (n -> infinity): the Gini of |x| is 1/3 for x
uniform on [-a, a] and sqrt(2) - 1 for x Gaussian; the Gini of n equal values is 0.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from neumo.errors import NeumoError


def _values(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x.detach()).to("cpu", torch.float64).reshape(-1)
    if t.numel() == 0:
        raise NeumoError("inequality measures need at least one value")
    return t


def gini(x) -> float:
    """Population Gini coefficient of non-negative values: sum_ij |x_i - x_j| / (2 n^2 mean)."""
    return _gini_sorted(torch.sort(_values(x)).values)


def _gini_sorted(v: torch.Tensor) -> float:
    """:func:`gini` of values already sorted ascending."""
    if (v < 0).any():
        raise NeumoError("the Gini coefficient needs non-negative values; pass magnitudes or norms")
    n, total = v.numel(), v.sum()
    if total == 0:
        return 0.0
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(2 * (i * v).sum() / (n * total) - (n + 1) / n)


def top_share(x, q: float) -> float:
    """Share of the total held by the largest ceil(q * n) values (q in (0, 1])."""
    return _top_share_sorted(torch.sort(_values(x), descending=True).values, q)


def _top_share_sorted(v: torch.Tensor, q: float, total: torch.Tensor | None = None) -> float:
    """:func:`top_share` of values already sorted descending (``total``: their sum, if known)."""
    if not 0 < q <= 1:
        raise NeumoError(f"The 'q' parameter must be in (0, 1]. Got {q!r} instead.")
    total = v.sum() if total is None else total
    return 0.0 if total == 0 else float(v[: max(1, math.ceil(q * v.numel()))].sum() / total)


def _rank(v: torch.Tensor) -> torch.Tensor:
    """Average ranks (ties share the mean of their positions)."""
    order = torch.argsort(v, stable=True)
    ranks = torch.empty_like(v)
    ranks[order] = torch.arange(v.numel(), dtype=torch.float64)
    uniq, inv = torch.unique(v, return_inverse=True)
    sums = torch.zeros(uniq.numel(), dtype=torch.float64).index_add_(0, inv, ranks)
    counts = torch.zeros(uniq.numel(), dtype=torch.float64).index_add_(0, inv, torch.ones_like(ranks))
    return (sums / counts)[inv]


def spearman(a, b) -> float:
    """Spearman rank correlation (0 when either side is constant)."""
    ra, rb = _rank(_values(a)), _rank(_values(b))
    if ra.numel() != rb.numel():
        raise NeumoError(f"spearman needs two equally long vectors; got {ra.numel()} and {rb.numel()}")
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(ra.norm() * rb.norm())
    return 0.0 if den == 0 else float((ra * rb).sum()) / den


def inverse_herfindahl(shares) -> float:
    """1 / sum s_i^2 for shares summing to 1: the effective number of parts."""
    s = _values(shares)
    total = s.sum()
    return 0.0 if total == 0 else float(1.0 / ((s / total) ** 2).sum())


def neuron_strengths(w: torch.Tensor) -> dict[str, torch.Tensor]:
    """Row norms (``out``: each output neuron's incoming weights) and column norms (``in``)."""
    w = w.detach().reshape(w.shape[0], -1).double()
    return {"out": w.norm(dim=1), "in": w.norm(dim=0)}


def inequality_metrics(x) -> dict[str, float]:
    """Gini, top-1% and top-10% shares from one sort (the descending order is the ascending one flipped, so
    every sum runs over the same sequence as in :func:`gini` and :func:`top_share`: identical values)."""
    asc = torch.sort(_values(x)).values
    g = _gini_sorted(asc)
    desc = asc.flip(0)
    total = desc.sum()
    return {
        "gini": g,
        "top1_share": _top_share_sorted(desc, 0.01, total),
        "top10_share": _top_share_sorted(desc, 0.10, total),
    }


__all__ = ["gini", "top_share", "spearman", "inverse_herfindahl", "neuron_strengths", "inequality_metrics"]
