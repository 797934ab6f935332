"""Criteria of the log-probability *sequence* (its shape in time, not only its mean): pure numpy functions.

Every function takes a series ``x`` of shape (T,) or a batch of series (T, S) (one column per series, e.g.
the sampled sequences of Lastde++) and returns one value per series.

Multiscale diversity entropy (Xu et al. 2025, "Training-free LLM-generated text detection by mining token
probability sequences", ICLR; reference code github.com/TrustMedia-zju/Lastde_Detector,
``py_scripts/baselines/scoring_methods/fastMDE.py``):

1. scale tau: the moving average of window tau, stride 1: ``x^(tau)_i = mean(x_i .. x_{i+tau-1})``,
   T - tau + 1 values;
2. orbits: the delay embedding with dimension s, stride 1: ``o_i = (x_i, .., x_{i+s-1})``;
3. the cosine similarity of consecutive orbits ``c_i = cos(o_i, o_{i+1})`` (T' - s values in [-1, 1]; a
   zero-norm orbit gives 0);
4. their histogram over eps equal bins of [-1, 1] (``torch.histc``'s rule: bin = floor((c + 1) / 2 * eps),
   c = 1 in the last bin), frequencies p_j;
5. the diversity entropy ``DE = -sum_j p_j log p_j / log eps`` (0 when there is no pair of orbits: the
   reference code's ``nansum`` of an empty histogram);
6. ``MDE = std(DE(1), .., DE(tau'))`` over the scales, with Bessel's correction (``torch.std``).

Lastde = mean(x) / MDE(x). Spectral energy (Luo et al. 2025, "SpecDetect: simple, fast, and training-free
detection of LLM-generated text via spectral analysis", AAAI 2026, arXiv:2508.11343): with x centred
(x - mean x) and X_k its DFT, ``E = sum_{k=0}^{floor(T/2)-1} |X_k|^2 / T^2``, the power in the first half of
the spectrum; SpecDetect scores -E (machine text has a flatter log-prob sequence: less energy).
"""

from __future__ import annotations

import numpy as np

MDE_FLOOR = 1e-6  # MDE of a constant or too-short series is 0; dividing by it is undefined


def _as_batch(x) -> tuple[np.ndarray, bool]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        return a[:, None], True
    if a.ndim != 2:
        raise ValueError(f"expected a series (T,) or a batch of series (T, S), got shape {a.shape}")
    return a, False


def _out(v: np.ndarray, single: bool):
    return float(v[0]) if single else v


def moving_average(x, tau: int) -> np.ndarray:
    """(T, S) -> (T - tau + 1, S): means of windows of ``tau`` consecutive values, stride 1."""
    a, _ = _as_batch(x)
    c = np.vstack([np.zeros((1, a.shape[1])), np.cumsum(a, axis=0)])
    return (c[tau:] - c[:-tau]) / tau


def diversity_entropy(x, embed: int, eps: int):
    """DE of each series (steps 2-5 of the module docstring)."""
    a, single = _as_batch(x)
    T, S = a.shape
    n_pairs = T - embed  # T - embed + 1 orbits, one fewer consecutive pairs
    if n_pairs < 1:
        return _out(np.zeros(S), single)
    # consecutive orbits o_i, o_{i+1} from lagged slices, summed in the order of a dot product over the embed
    # axis (the same arithmetic as stacking the orbits, without the (n_pairs, S, embed) arrays)
    sq, lag = a * a, a[:-1] * a[1:]
    dot, nu, nv = lag[:n_pairs].copy(), sq[:n_pairs].copy(), sq[1 : n_pairs + 1].copy()
    for j in range(1, embed):
        dot += lag[j : j + n_pairs]
        nu += sq[j : j + n_pairs]
        nv += sq[j + 1 : j + 1 + n_pairs]
    norms = np.sqrt(nu) * np.sqrt(nv)
    cos = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 0.0)  # (n_pairs, S)
    cos = np.clip(cos, -1.0, 1.0)
    bins = np.minimum(np.floor((cos + 1.0) / 2.0 * eps).astype(np.int64), eps - 1)
    flat = (bins + eps * np.arange(S)).ravel()  # series s owns bins [s * eps, (s + 1) * eps)
    counts = np.bincount(flat, minlength=S * eps)
    # only occupied bins enter the entropy (eps is ~8 bins per token, most are empty)
    nz = np.flatnonzero(counts)
    p = counts[nz] / n_pairs
    h = np.bincount(nz // eps, weights=p * np.log(p), minlength=S)
    return _out(-h / np.log(eps), single)


def multiscale_de(x, embed: int, eps: int, tau_max: int):
    """MDE: the standard deviation (ddof=1) of DE over scales tau = 1..tau_max. Scales longer than the
    series have no values: their DE is 0, as for a scale with fewer than two orbits."""
    a, single = _as_batch(x)
    T = a.shape[0]
    des = [
        diversity_entropy(moving_average(a, t), embed, eps) if t <= T else np.zeros(a.shape[1])
        for t in range(1, tau_max + 1)
    ]
    return _out(np.std(np.stack(des), axis=0, ddof=1), single)


def lastde(x, embed: int, eps_per_token: float, tau_max: int):
    """Lastde = mean(x) / MDE(x), with eps = int(eps_per_token * T) bins (Xu et al. 2025); MDE is
    floored at ``MDE_FLOOR``."""
    a, single = _as_batch(x)
    eps = max(2, int(eps_per_token * a.shape[0]))
    mde = np.maximum(multiscale_de(a, embed, eps, tau_max), MDE_FLOOR)
    return _out(a.mean(axis=0) / mde, single)


def spectral_energy(x):
    """E = sum_{k < floor(T/2)} |DFT(x - mean x)_k|^2 / T^2 (Luo et al. 2025, SpecDetect)."""
    a, single = _as_batch(x)
    T = a.shape[0]
    X = np.fft.fft(a - a.mean(axis=0), axis=0)
    return _out((np.abs(X[: T // 2]) ** 2).sum(axis=0) / T**2, single)
