"""Automaton extraction from recurrent hidden states (Omlin & Giles 1996; Weiss et al. 2018 in spirit).

1. collect the hidden state after every token of many strings (plus the start, before any token);
2. cluster the states: k-means, or PCA + a regular grid on the leading components;
3. transition table: for each (cluster, symbol) the majority next cluster; outputs: the majority of
   the model's own predictions in each cluster; the start is its own state with an unobserved output;
4. minimise, then compare with the true machine: state-mapping accuracy (each cluster mapped to its
   majority true state), equivalence on every string of length >= 1, and agreement on held-out strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from neumo.errors import NeumoError
from neumo.memory.automata import DFA, counterexample, merge_unobserved_start, minimize


@dataclass(frozen=True)
class Extraction:
    dfa: DFA  # minimised extracted machine
    raw_states: int  # clusters + start before minimisation
    transition_consistency: float  # share of observed transitions that agree with the majority
    coverage: float  # share of (cluster, symbol) pairs observed at least once
    labels: np.ndarray  # (B, T) cluster of each hidden state


@dataclass(frozen=True)
class Comparison:
    equivalent: bool
    counterexample: list[int] | None
    state_map_acc: float
    heldout_agreement: float
    n_states_extracted: int
    n_states_true: int


def cluster_kmeans(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    k = min(k, len(np.unique(points.round(6), axis=0)))
    return KMeans(n_clusters=k, n_init=4, random_state=seed % (2**31)).fit_predict(points)


def cluster_grid(points: np.ndarray, n_components: int = 2, bins: int = 4) -> np.ndarray:
    """PCA to ``n_components`` then ``bins`` equal-width cells per component; cells renumbered 0..n-1."""
    from sklearn.decomposition import PCA

    c = min(n_components, points.shape[1], len(points))
    z = PCA(n_components=c, svd_solver="full").fit_transform(points)
    lo, hi = z.min(0), z.max(0)
    cell = np.clip(((z - lo) / np.where(hi > lo, hi - lo, 1.0) * bins).astype(int), 0, bins - 1)
    _, labels = np.unique(cell, axis=0, return_inverse=True)
    return labels.reshape(-1)


def extract(
    hidden: np.ndarray,
    inputs: np.ndarray,
    preds: np.ndarray,
    n_symbols: int,
    *,
    method: Literal["kmeans", "grid"] = "kmeans",
    k: int = 8,
    n_components: int = 2,
    bins: int = 4,
    seed: int = 0,
) -> Extraction:
    """hidden (B, T, D) after each token, inputs (B, T) symbols, preds (B, T) model outputs."""
    B, T, D = hidden.shape
    if inputs.shape != (B, T) or preds.shape != (B, T):
        raise NeumoError(f"hidden {hidden.shape}, inputs {inputs.shape} and preds {preds.shape} disagree")
    pts = hidden.reshape(-1, D).astype(np.float64)
    if method == "kmeans":
        lab = cluster_kmeans(pts, k, seed)
    elif method == "grid":
        lab = cluster_grid(pts, n_components, bins)
    else:
        raise NeumoError(f"clustering method must be 'kmeans' or 'grid'; got {method!r}")
    labels = lab.reshape(B, T)
    n = int(labels.max()) + 1
    start = n  # the state before any token
    prev = np.concatenate([np.full((B, 1), start), labels[:, :-1]], 1)
    counts = np.zeros((n + 1, n_symbols, n), dtype=np.int64)
    np.add.at(counts, (prev.reshape(-1), inputs.reshape(-1), labels.reshape(-1)), 1)
    seen = counts.sum(-1) > 0
    delta = np.where(seen, counts.argmax(-1), np.arange(n + 1)[:, None] % n)  # unseen: stay (or to 0)
    consistency = float(counts.max(-1).sum() / max(counts.sum(), 1))
    n_out = int(preds.max()) + 1
    votes = np.zeros((n, n_out), dtype=np.int64)
    np.add.at(votes, (labels.reshape(-1), preds.reshape(-1)), 1)
    out = np.concatenate([votes.argmax(1), [-1]])
    raw = DFA(delta, start, out)
    return Extraction(merge_unobserved_start(raw), n + 1, consistency, float(seen.mean()), labels)


def compare(ex: Extraction, truth: DFA, true_states: np.ndarray, heldout: np.ndarray) -> Comparison:
    """true_states (B, T) aligned with ``ex.labels``; heldout (N, L) symbol strings."""
    lab, ts = ex.labels.reshape(-1), true_states.reshape(-1)
    hits = 0
    for c in np.unique(lab):
        hits += np.bincount(ts[lab == c]).max()
    tmin = minimize(truth)
    cex = counterexample(ex.dfa, tmin, min_len=1)
    agree = float((ex.dfa.outputs(heldout) == truth.outputs(heldout)).mean())
    return Comparison(cex is None, cex, float(hits / len(lab)), agree, ex.dfa.n_states, tmin.n_states)


@torch.no_grad()
def model_states(model: torch.nn.Module, ids: torch.Tensor, key: str = "hidden") -> tuple[np.ndarray, np.ndarray]:
    """Hidden states (B, T, D) named ``key`` and greedy predictions (B, T) of a sequence model."""
    was = model.training
    model.eval()
    try:
        logits, mem = model(ids, return_memory=True)
    finally:
        model.train(was)
    if key not in mem:
        raise NeumoError(f"model has no memory tensor {key!r}; it has {sorted(mem)}")
    h = mem[key]
    if h.dim() == 4:  # (L+1, B, T, D): take the last layer
        h = h[-1]
    elif h.dim() == 6:  # linear attention state (L, B, H, T, hs, hs): last layer
        h = h[-1].permute(0, 2, 1, 3, 4).reshape(h.shape[1], h.shape[3], -1)
    return h.double().numpy(), logits.argmax(-1).numpy()
