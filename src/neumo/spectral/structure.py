"""Structure of a network's weights as a graph: the neuron-interaction graph and its multifractal spectrum.

- :func:`neuron_graph`: the neuron-interaction network (NIN) of a layered model (Xiao et al., ICLR 2025,
  "Neuron-based multifractal analysis of neuron interaction dynamics in large models"): one node per
  neuron of every layer (inputs included), an edge between neuron i of layer l and neuron j of layer l + 1
  when ``|W[j, i]| > threshold``, of length ``1 / |W[j, i]|`` (strong interactions are short). Returned as
  a symmetric scipy CSR matrix of edge lengths (the graph is taken undirected for path lengths).
- :func:`lattice_graph`: the d-dimensional square lattice (open or periodic), unit edges: the monofractal
  reference (dimension d).
- :func:`sandbox_spectrum`: the sandbox estimate of the multifractal spectrum of a graph (Tél, Fülöp &
  Vicsek 1989; for complex networks Liu et al. 2015, Chaos 25, 023103, the method NeuroMFA applies to its
  sampled NINs). With shortest-path lengths, M_c(r) the number of nodes within distance r of a centre c
  (itself included) and N the number of nodes,

      Z(q, r) = mean_c (M_c(r) / N)^(q - 1)   ~   (r / D)^tau(q)        (D: the largest distance found)

  so tau(q) is the least-squares slope of ln Z(q, r) on ln(r / D) over the radii. Then D_q = tau(q) / (q - 1)
  (the generalised dimensions; D_0 = tau(0) / -1 the box dimension), alpha(q) = d tau / d q (a finite
  difference on the q grid) and f(alpha) = q alpha - tau (the Legendre transform). Reported: the width
  ``alpha_max - alpha_min`` over the q grid (0 for a monofractal), the peak position ``alpha_0 = alpha(0)``
  (f(alpha_0) = D_0; the maximum of f when tau is concave, as for a clean multifractal) and the worst R^2 of
  the fits (whether the graph scales at all over the radii). In a graph whose regions differ in local
  dimension, negative q weights the centres of small mass (the low-dimensional regions), so alpha(q_min) is
  the *smaller* end, unlike the box-counting convention; the width is taken sign-free.

Radii: given explicitly, or a geometric grid between two quantiles of the centres' finite distances
(``r_quantiles``): a scaling range between the local scale and the size of the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from neumo.errors import NeumoError


def neuron_graph(weights: Sequence[torch.Tensor], threshold: float = 0.0):
    """The NIN of consecutive layer matrices ``weights[l]`` (out_l, in_l), ``in_{l+1} = out_l``: a symmetric
    CSR matrix of edge lengths ``1 / |w|`` over ``in_0 + sum out_l`` nodes (inputs first, then each layer)."""
    from scipy import sparse

    mats = [torch.as_tensor(w).detach().double().cpu().numpy() for w in weights]
    if not mats or any(m.ndim != 2 for m in mats):
        raise NeumoError("neuron_graph needs a non-empty list of 2-D (out, in) weight matrices")
    for l, (a, b) in enumerate(zip(mats[:-1], mats[1:])):
        if b.shape[1] != a.shape[0]:
            raise NeumoError(
                f"layer {l + 1} takes {b.shape[1]} inputs but layer {l} has {a.shape[0]} outputs; "
                "pass the layers' weights in forward order"
            )
    offsets = np.cumsum([0, mats[0].shape[1], *[m.shape[0] for m in mats]])
    rows, cols, lens = [], [], []
    for l, w in enumerate(mats):
        j, i = np.nonzero(np.abs(w) > threshold)
        rows.append(offsets[l] + i)
        cols.append(offsets[l + 1] + j)
        lens.append(1.0 / np.abs(w[j, i]))
    r, c, d = np.concatenate(rows), np.concatenate(cols), np.concatenate(lens)
    n = int(offsets[-1])
    g = sparse.coo_matrix((d, (r, c)), shape=(n, n)).tocsr()
    return (g + g.T).tocsr()


def lattice_graph(side: int, dims: int = 2, periodic: bool = False):
    """The ``side^dims`` square lattice with unit edges (CSR), periodic (a torus) or with open boundaries."""
    from scipy import sparse

    if side < 2 or dims < 1:
        raise NeumoError(f"a lattice needs side >= 2 and dims >= 1. Got side={side}, dims={dims} instead.")
    idx = np.arange(side**dims).reshape((side,) * dims)
    rows, cols = [], []
    for ax in range(dims):
        nxt = np.roll(idx, -1, axis=ax)
        a, b = idx, nxt
        if not periodic:
            keep = [slice(None)] * dims
            keep[ax] = slice(0, side - 1)
            a, b = idx[tuple(keep)], nxt[tuple(keep)]
        rows.append(a.ravel())
        cols.append(b.ravel())
    r, c = np.concatenate(rows), np.concatenate(cols)
    n = side**dims
    g = sparse.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)).tocsr()
    return (g + g.T).tocsr()


@dataclass(frozen=True)
class MultifractalSpectrum:
    q: np.ndarray  # (Q,) ascending
    tau: np.ndarray  # (Q,) mass exponents
    alpha: np.ndarray  # (Q,) Lipschitz-Hölder exponents d tau / d q
    f: np.ndarray  # (Q,) f(alpha) = q alpha - tau
    radii: np.ndarray  # the radii of the fits
    min_r2: float  # the worst R^2 of the ln Z on ln r fits (over q)

    @property
    def width(self) -> float:
        """alpha_max - alpha_min over the q grid: 0 for a monofractal, larger for a more heterogeneous graph."""
        return float(self.alpha.max() - self.alpha.min())

    @property
    def alpha0(self) -> float:
        """The peak position: alpha at q = 0 (interpolated on the q grid)."""
        return float(np.interp(0.0, self.q, self.alpha))

    def dimension(self, q: float = 0.0) -> float:
        """The generalised dimension D_q = tau(q) / (q - 1) (interpolated; q = 1 excluded)."""
        if abs(q - 1.0) < 1e-9:
            raise NeumoError("D_1 is a limit (the information dimension); ask for q != 1")
        return float(np.interp(q, self.q, self.tau) / (q - 1.0))


def sandbox_spectrum(
    graph,
    q: Sequence[float] | None = None,
    radii: Sequence[float] | None = None,
    n_radii: int = 8,
    r_quantiles: tuple[float, float] = (0.02, 0.3),
    n_centers: int | None = None,
    seed: int = 0,
) -> MultifractalSpectrum:
    """The sandbox multifractal spectrum of ``graph`` (a scipy sparse or dense matrix of edge lengths, 0 = no
    edge). Centres: every node, or ``n_centers`` drawn without replacement from ``seed``."""
    from scipy.sparse.csgraph import shortest_path

    from neumo.seeding import numpy_rng

    n = graph.shape[0]
    qs = np.asarray(np.linspace(-3, 3, 25) if q is None else q, dtype=float)
    if qs.ndim != 1 or qs.size < 3 or np.any(np.diff(qs) <= 0):
        raise NeumoError("The 'q' parameter must be an ascending grid of at least 3 values.")
    centres = np.arange(n)
    if n_centers is not None and n_centers < n:
        centres = np.sort(numpy_rng(seed, "sandbox-centres").choice(n, size=int(n_centers), replace=False))
    dist = shortest_path(graph, method="D", directed=False, indices=centres)  # (n_centres, n)
    finite = dist[np.isfinite(dist) & (dist > 0)]
    if finite.size == 0:
        raise NeumoError("the graph has no edges between distinct nodes; nothing to scale")
    diameter = float(finite.max())
    if radii is None:
        lo, hi = np.quantile(finite, r_quantiles)
        if not hi > lo:
            raise NeumoError(
                f"the radius quantiles {r_quantiles} give an empty range ({lo:g}..{hi:g}); pass radii explicitly"
            )
        rs = np.geomspace(lo, hi, int(n_radii))
    else:
        rs = np.asarray(radii, dtype=float)
        if rs.size < 2 or np.any(rs <= 0):
            raise NeumoError("The 'radii' parameter must hold at least 2 positive radii.")
    mass = np.stack([(dist <= r + 1e-12 * max(r, 1.0)).sum(1) for r in rs], 1) / n  # (n_centres, R)
    lx = np.log(rs / diameter)
    logz = np.log(np.stack([np.mean(mass ** (qq - 1.0), axis=0) for qq in qs]))  # (Q, R)
    A = np.column_stack([lx, np.ones_like(lx)])
    coef, *_ = np.linalg.lstsq(A, logz.T, rcond=None)  # (2, Q)
    tau = coef[0]
    res = logz - (A @ coef).T
    tot = ((logz - logz.mean(1, keepdims=True)) ** 2).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(tot > 1e-12, 1 - (res**2).sum(1) / tot, 1.0)  # q = 1: Z = 1, a perfect flat fit
    alpha = np.gradient(tau, qs)
    return MultifractalSpectrum(q=qs, tau=tau, alpha=alpha, f=qs * alpha - tau, radii=rs, min_r2=float(r2.min()))


def shuffled_weights(w: torch.Tensor, seed: int) -> torch.Tensor:
    """The entries of ``w`` in a random order (same values and shape, no structure): the NIN's null."""
    from neumo.seeding import make_generator

    flat = torch.as_tensor(w).detach().reshape(-1)
    perm = torch.randperm(flat.numel(), generator=make_generator(seed, "shuffled-weights"))
    return flat[perm].reshape(w.shape)


__all__ = ["MultifractalSpectrum", "lattice_graph", "neuron_graph", "sandbox_spectrum", "shuffled_weights"]
