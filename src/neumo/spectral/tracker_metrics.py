"""Pure per-module measurements used by the tracker (each returns ``{metric: value}``)."""

from __future__ import annotations

import math
from typing import Sequence

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


CHUNK = 64  # elements per partial sum of squares in :class:`FlatLayout`


class FlatLayout:
    """Tensors of one dtype and device laid out in one flat buffer, each padded with zeros to whole rows of
    :data:`CHUNK` elements, so that the squared norms of all of them are one reduction over rows.

    :meth:`squared_norms` sums each row's squares in the buffer's dtype (one ``vector_norm`` over the
    (rows, CHUNK) view), then adds each tensor's row sums in float64. Every row is a sum of at most CHUNK
    non-negative rounded squares, so whatever the summation order inside a row, each tensor's value is
    within relative (CHUNK + 2) u of ``float(t.double().pow(2).sum())`` (u = 2^-24 in float32: 3.9e-6; the
    float64 stage adds about 1e-16 log2(rows)), as long as no square leaves the dtype's normal range: values
    that are not finite or fall below ``numel * 2^-100`` (where float32 underflow could matter) are
    recomputed from the tensor's float64 squares (a zero is kept when the tensor is all zeros)."""

    def __init__(self, tensors: Sequence[torch.Tensor]):
        t0 = tensors[0]
        self.dtype, self.device = t0.dtype, t0.device
        self.shapes = [t.shape for t in tensors]
        self.numels = [t.numel() for t in tensors]
        rows = [-(-n // CHUNK) for n in self.numels]
        self.offsets = [CHUNK * (sum(rows[:i])) for i in range(len(rows))]
        self.size = CHUNK * sum(rows)
        self.row_owner = torch.repeat_interleave(
            torch.arange(len(rows), device=self.device), torch.tensor(rows, device=self.device)
        )
        self.floor = [n * 2.0**-100 for n in self.numels]
        self._owner = self.row_owner  # row -> output slot for as many copies as seen so far (a prefix serves fewer)

    @staticmethod
    def fits(tensors: Sequence[torch.Tensor]) -> bool:
        t0 = tensors[0] if tensors else None
        return (
            t0 is not None
            and t0.is_floating_point()
            and all(t.dtype == t0.dtype and t.device == t0.device for t in tensors)
        )

    def buffer(self, copies: int = 1, zero: bool = True) -> torch.Tensor:
        """A buffer holding ``copies`` layouts back to back (slice ``[i * size : (i + 1) * size]``): all zeros,
        or (``zero=False``) zeros in the padding only, the tensors' places left for the caller to fill."""
        if zero:
            return torch.zeros(copies * self.size, dtype=self.dtype, device=self.device)
        buf = torch.empty(copies, self.size, dtype=self.dtype, device=self.device)
        for o, n in zip(self.offsets, self.numels):
            buf[:, o + n : o + -(-n // CHUNK) * CHUNK] = 0
        return buf.view(-1)

    def views(self, buf: torch.Tensor) -> list[torch.Tensor]:
        return [buf[o : o + n].view(s) for o, n, s in zip(self.offsets, self.numels, self.shapes)]

    def squared_norms(
        self, buf: torch.Tensor, views: Sequence[torch.Tensor], check: Sequence[int] | None = None
    ) -> list[float]:
        """:func:`squared_norms` of ``views`` (the tensors of ``buf``; its padding must be zeros).

        ``buf`` may hold several layouts back to back (:meth:`buffer` with ``copies``); ``views`` then lists
        the tensors of each copy in turn, and so does the result. One reduction serves all copies: on the
        CPU each distinct kernel was measured to cost tens of microseconds the first time it runs after a
        training step, far more than its arithmetic on a few hundred kilobytes (bench/README.md).
        ``check``: the copies whose values will be used (default all); only those are guarded against
        overflow and underflow, the others are returned as computed."""
        copies, n = buf.numel() // self.size, len(self.numels)
        if self._owner.numel() < copies * self.row_owner.numel():
            self._owner = torch.cat([self.row_owner + c * n for c in range(copies)])
        owner = self._owner[: copies * self.row_owner.numel()]
        rows = torch.linalg.vector_norm(buf.view(-1, CHUNK), dim=1).to(torch.float64).square_()
        out = torch.zeros(copies * n, dtype=torch.float64, device=self.device)
        vals = out.index_add_(0, owner, rows).tolist()
        for c in range(copies) if check is None else check:
            for j, lo in enumerate(self.floor):
                i, v = c * n + j, vals[c * n + j]
                if not lo <= v < math.inf and (v != 0.0 or bool(views[i].any())):  # overflow or underflow:
                    vals[i] = float(views[i].double().pow(2).sum())  # the float64 squares (0 stays 0 if exact)
        return vals
