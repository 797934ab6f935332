"""Pure per-module measurements used by the tracker (each returns ``{metric: value}``)."""

from __future__ import annotations

import torch

from neumo.spectral.inequality import inequality_metrics, neuron_strengths
from neumo.spectral.ranks import RANK_NAMES, as_matrix, matrix_ranks


def rank_metrics(M: torch.Tensor, eps: float, bound: int | None = None) -> dict[str, float]:
    """The four ranks of ``M``; with ``bound``, also each rank divided by it (``<rank>_over_bound``)."""
    r = matrix_ranks(as_matrix(M).double(), eps)
    if bound:
        r.update({f"{k}_over_bound": r[k] / bound for k in RANK_NAMES})
    return r


def gradient_rank_bound(shape: torch.Size, n_samples: int | None) -> int:
    """A weight gradient is a sum of n per-sample outer products: rank <= min(n, m, n_in)."""
    m, n = as_matrix(torch.empty(shape, device="meta")).shape
    return min(m, n) if n_samples is None else min(int(n_samples), m, n)


def inequality_rows(w: torch.Tensor) -> dict[tuple[str, str], float]:
    """(quantity, metric) -> value for neuron strengths (rows ``neurons_out``, columns ``neurons_in``)
    and connection magnitudes |w_ij| (``entries``)."""
    out: dict[tuple[str, str], float] = {}
    for side, v in neuron_strengths(w).items():
        out.update({(f"neurons_{side}", k): x for k, x in inequality_metrics(v).items()})
    out.update({("entries", k): x for k, x in inequality_metrics(w.detach().abs()).items()})
    return out


def energy_shares(energies: dict[str, float]) -> tuple[dict[str, float], float]:
    """Shares of a per-module energy and the effective number of modules (1 / Herfindahl).

    Plain Python floats (the tracker calls this twice a step, for a dozen values): equal to
    :func:`neumo.spectral.inequality.inverse_herfindahl` of the values up to float64 summation order."""
    values = list(energies.values())
    total = sum(values)
    if not total > 0:
        return {k: 0.0 for k in energies}, 0.0
    shares = {k: v / total for k, v in energies.items()}
    return shares, 1.0 / sum((v / total) ** 2 for v in values)


def squared_norms(tensors) -> list[float]:
    """``[float(t.double().pow(2).sum()) for t in tensors]`` to float64 rounding, in one fused call
    (the norms are accumulated in float64 without a float64 copy of each tensor)."""
    if not tensors:
        return []
    return torch.stack(torch._foreach_norm(list(tensors), 2, dtype=torch.float64)).square_().tolist()


def n_samples_of(batch) -> int | None:
    """Rows contributing to a weight gradient: B for (B, d) float inputs, B * T for (B, T) token ids."""
    x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    if isinstance(x, dict):
        x = x.get("input_ids", next(iter(x.values()), None))
    if not torch.is_tensor(x) or x.dim() == 0:
        return None
    return int(x.numel()) if not x.is_floating_point() else int(x.shape[:-1].numel() or 1)
