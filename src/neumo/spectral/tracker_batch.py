"""The tracker's record-step measurements over many modules at once (one call per matrix shape).

Each function takes a list of tensors and returns one ``{metric: value}`` dict per input, equal (to float
tolerance) to the per-module functions in :mod:`neumo.spectral.tracker_metrics`, which stay the reference:

- :func:`spectra_of` gives the singular values of every matrix from one symmetric eigensolve per shape on
  the float64 Gram matrices (wide matrices are transposed first: same singular values). The Gram
  eigenvalues (the squared singular values) are accurate to about 1e-16 of the largest, so a singular value
  sigma_i comes out with relative error about 1e-16 (sigma_max / sigma_i)^2 / 2: at most 5e-11 while
  sigma_min >= 1e-3 sigma_max. Matrices below that condition (rank-deficient gradients, for instance) get
  their singular values from ``torch.linalg.svdvals`` in float64 instead, as the per-module path does.
- :func:`batch_spectrum_ranks` computes the four ranks of a stack of spectra with tensor operations over the
  stack (one ``tolist`` per stack instead of about ten small tensor calls per spectrum).
- :func:`batch_inequality` and :func:`batch_spearman` do the same for the Gini / top-share rows and the
  rich-get-richer correlation. Magnitudes are sorted in their own dtype (by numpy on the CPU) and then
  promoted: the promotion is exact and monotone, so the sorted float64 values are the ones a float64 sort
  gives.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from neumo.spectral.inequality import _rank, neuron_strengths
from neumo.spectral.ranks import RANK_NAMES, as_matrix


_GRAM_MIN_RATIO = 1e-6  # lambda_min / lambda_max of A^T A below which the SVD is used


def _groups(mats: Sequence[torch.Tensor]) -> dict[tuple, list[int]]:
    out: dict[tuple, list[int]] = {}
    for i, m in enumerate(mats):
        out.setdefault((tuple(m.shape), m.dtype, m.device), []).append(i)
    return out


def spectra_of(mats: list[torch.Tensor]) -> list[torch.Tensor]:
    """Singular values (float64, descending) of each matrix (``as_matrix`` of each tensor)."""
    mats = [as_matrix(m) for m in mats]
    mats = [m.mT if m.shape[0] < m.shape[1] else m for m in mats]
    out: list[torch.Tensor] = [torch.empty(0)] * len(mats)
    for idx in _groups(mats).values():
        a = torch.stack([mats[i] for i in idx]).to(torch.float64)
        lam = torch.linalg.eigvalsh(a.mT @ a).flip(-1).clamp_(min=0)  # descending eigenvalues of A^T A
        s = lam.sqrt_()
        bad = (lam[:, -1] < _GRAM_MIN_RATIO * lam[:, 0]).nonzero().flatten()
        if bad.numel():
            s[bad] = torch.linalg.svdvals(a[bad])
        for j, i in enumerate(idx):
            out[i] = s[j]
    return out


def batch_spectrum_ranks(S: torch.Tensor, eps: float) -> list[dict[str, float]]:
    """:func:`neumo.ranks.spectrum_ranks` of each row of ``S`` (B, k), vectorised over the rows."""
    t = S.to(torch.float64).abs()
    top = t.amax(-1, keepdim=True)
    t = torch.where(top > 0, t / torch.where(top > 0, top, 1.0), t)
    e = torch.sort(t * t, dim=-1, descending=True).values
    cum = torch.cumsum(e, -1)
    target = (1.0 - eps) * cum[:, -1:] * (1.0 - 1e-12)
    energy = torch.searchsorted(cum, target).squeeze(-1).to(torch.float64) + 1
    esum, emax = e.sum(-1), e[:, 0]
    nz = emax > 0
    energy = torch.where(nz, energy, 0.0)
    stable = torch.where(nz, esum / torch.where(nz, emax, 1.0), 0.0)
    pr = torch.where(nz, esum**2 / torch.where(nz, (e * e).sum(-1), 1.0), 0.0)
    total = t.sum(-1, keepdim=True)
    p = t / torch.where(total > 0, total, 1.0)
    plogp = torch.where(p > 0, p * torch.log(torch.where(p > 0, p, 1.0)), 0.0)
    entropy = torch.where(total.squeeze(-1) > 0, torch.exp(-plogp.sum(-1)), 0.0)
    cols = torch.stack([energy, stable, entropy, pr], -1).tolist()
    return [dict(zip(RANK_NAMES, row)) for row in cols]


def batch_rank_metrics(mats: list[torch.Tensor], eps: float, bounds: list[int] | None = None) -> list[dict]:
    """:func:`neumo.spectral.tracker_metrics.rank_metrics` of each matrix (with its bound, if given)."""
    spectra = spectra_of(mats)
    out: list[dict] = [{}] * len(mats)
    for idx in _groups(spectra).values():
        for i, r in zip(idx, batch_spectrum_ranks(torch.stack([spectra[i] for i in idx]), eps)):
            if bounds is not None and bounds[i]:
                r.update({f"{k}_over_bound": r[k] / bounds[i] for k in RANK_NAMES})
            out[i] = r
    return out


def _gini_top(asc: torch.Tensor) -> list[tuple[float, float, float]]:
    """(gini, top1_share, top10_share) of each row of ``asc`` (B, n), sorted ascending, non-negative."""
    n = asc.shape[-1]
    total = asc.sum(-1)
    i = torch.arange(1, n + 1, dtype=torch.float64, device=asc.device)
    ok = total > 0
    safe = torch.where(ok, total, 1.0)
    gini = torch.where(ok, 2 * (asc * i).sum(-1) / (n * safe) - (n + 1) / n, 0.0)
    desc = asc.flip(-1)
    top1 = torch.where(ok, desc[:, : max(1, math.ceil(0.01 * n))].sum(-1) / safe, 0.0)
    top10 = torch.where(ok, desc[:, : max(1, math.ceil(0.10 * n))].sum(-1) / safe, 0.0)
    return [tuple(r) for r in torch.stack([gini, top1, top10], -1).tolist()]


def batch_inequality(ws: Sequence[torch.Tensor], strengths: list[dict[str, torch.Tensor]] | None = None) -> list[dict]:
    """:func:`neumo.spectral.tracker_metrics.inequality_rows` of each weight, in the same key order."""
    strengths = strengths if strengths is not None else [neuron_strengths(w) for w in ws]
    out: list[dict] = [{} for _ in ws]
    for idx in _groups(ws).values():
        parts = {
            "neurons_out": torch.stack([strengths[i]["out"] for i in idx]),
            "neurons_in": torch.stack([strengths[i]["in"] for i in idx]),
            "entries": torch.stack([ws[i].detach().reshape(-1) for i in idx]).abs(),
        }
        for q, v in parts.items():
            asc = _sorted(v).to(torch.float64)
            for i, (g, t1, t10) in zip(idx, _gini_top(asc)):
                out[i].update({(q, "gini"): g, (q, "top1_share"): t1, (q, "top10_share"): t10})
    return out


def _sorted(v: torch.Tensor) -> torch.Tensor:
    """Each row sorted ascending: numpy's sort on the CPU (vectorised; 3-4x torch.sort on 16k floats here)."""
    if v.device.type != "cpu":
        return torch.sort(v, dim=-1).values
    return torch.from_numpy(np.sort(v.detach().numpy(), axis=-1))


def _ranks_of(v: torch.Tensor) -> torch.Tensor:
    """Average ranks of each row of ``v`` (B, n): the inverse permutation, or :func:`_rank` on rows with ties."""
    order = torch.argsort(v, dim=-1, stable=True)
    ranks = torch.empty_like(v).scatter_(
        -1, order, torch.arange(v.shape[-1], dtype=v.dtype, device=v.device).expand_as(v)
    )
    srt = torch.gather(v, -1, order)
    ties = (srt[:, 1:] == srt[:, :-1]).any(-1)
    for b in ties.nonzero().flatten().tolist():
        ranks[b] = _rank(v[b])
    return ranks


def batch_spearman(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """:func:`neumo.spectral.inequality.spearman` of each row pair of ``a``, ``b`` (B, n), float64."""
    ra, rb = _ranks_of(a.to(torch.float64)), _ranks_of(b.to(torch.float64))
    ra, rb = ra - ra.mean(-1, keepdim=True), rb - rb.mean(-1, keepdim=True)
    den = ra.norm(dim=-1) * rb.norm(dim=-1)
    ok = den != 0
    return torch.where(ok, (ra * rb).sum(-1) / torch.where(ok, den, 1.0), 0.0).tolist()


def batch_rich(snapshots: list[dict[str, torch.Tensor]], now: list[dict[str, torch.Tensor]]) -> list[dict]:
    """``{side: spearman(snapshot[side], now[side] - snapshot[side])}`` for each module."""
    out: list[dict] = [{} for _ in now]
    for side in ("out", "in"):
        by_len: dict[int, list[int]] = {}
        for i, s in enumerate(snapshots):
            by_len.setdefault(s[side].numel(), []).append(i)
        for idx in by_len.values():
            a = torch.stack([snapshots[i][side] for i in idx])
            b = torch.stack([now[i][side] for i in idx]) - a
            for i, r in zip(idx, batch_spearman(a, b)):
                out[i][side] = r
    return out


__all__ = [
    "spectra_of",
    "batch_spectrum_ranks",
    "batch_rank_metrics",
    "batch_inequality",
    "batch_spearman",
    "batch_rich",
]
