"""Function-preserving widening of an MLP by neuron splitting (one step).

Splitting unit ``j`` of a hidden layer with ratio ``alpha`` appends a copy ``j'`` of it (same input
weights and bias, so the same activation ``h_j' = h_j``) and shares its outgoing weights:
``W_next[:, j] <- alpha * W_next[:, j]`` and ``W_next[:, j'] = (1 - alpha) * W_next[:, j]`` (old column).
Since ``alpha h_j + (1 - alpha) h_j = h_j``, the wider network computes the same function for every
real ``alpha`` (Chen, Goodfellow & Shlens 2016, Net2WiderNet, use alpha = 1/2). It also maps critical
points to critical points (Fukumizu & Amari 2000; Simsek et al. 2021): the outgoing gradients of both
copies equal the original one, and the incoming gradients are ``alpha`` and ``1 - alpha`` times it.
"""

from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
from torch import nn

from neumo.errors import NeumoError
from neumo.nn.mlp import MLP
from neumo.spectral._mlp import mlp_linears


def _check(linears: list[nn.Linear], layer, neurons, alpha) -> tuple[list[int], list[float]]:
    n_hidden = len(linears) - 1
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < n_hidden:
        raise NeumoError(
            f"The 'layer' parameter must be a hidden-layer index in [0, {n_hidden}). Got {layer!r} instead."
        )
    width = linears[layer].out_features
    idx = [neurons] if isinstance(neurons, int) else list(neurons)
    if not idx or any(isinstance(j, bool) or not isinstance(j, int) or not 0 <= j < width for j in idx):
        raise NeumoError(
            f"The 'neurons' parameter must list unit indices in [0, {width}) of hidden layer "
            f"{layer}. Got {neurons!r} instead."
        )
    if len(set(idx)) != len(idx):
        raise NeumoError(f"The 'neurons' parameter lists a unit twice ({neurons!r}); split it in two calls.")
    alphas = [alpha] * len(idx) if isinstance(alpha, (int, float)) else list(alpha)
    if len(alphas) != len(idx) or any(
        isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) for a in alphas
    ):
        raise NeumoError(
            f"The 'alpha' parameter must be a finite number or one per neuron ({len(idx)}). Got {alpha!r} instead."
        )
    return idx, [float(a) for a in alphas]


def _empty_linear(like: nn.Linear, in_features: int, out_features: int) -> nn.Linear:
    """A Linear with no random draw (built on meta, then given memory like ``like``)."""
    with torch.device("meta"):
        lin = nn.Linear(in_features, out_features, bias=like.bias is not None)
    return lin.to_empty(device=like.weight.device).to(like.weight.dtype)


@torch.no_grad()
def split_neurons(
    model: nn.Module, layer: int, neurons: int | Sequence[int], alpha: float | Sequence[float] = 0.5
) -> nn.Module:
    """A copy of the MLP ``model`` whose hidden layer ``layer`` has ``len(neurons)`` more units: unit
    ``neurons[i]`` is split with ratio ``alpha[i]`` and its copy is unit ``width + i``. Same function."""
    linears = mlp_linears(model)
    idx, alphas = _check(linears, layer, neurons, alpha)
    new = copy.deepcopy(model)
    assert isinstance(new, MLP)  # mlp_linears refused anything else
    # positions of the two Linear layers inside the Sequential
    pos = [i for i, m in enumerate(new.net) if isinstance(m, nn.Linear)]
    lin, nxt = new.net[pos[layer]], new.net[pos[layer + 1]]
    assert isinstance(lin, nn.Linear) and isinstance(nxt, nn.Linear)
    j = torch.tensor(idx, device=lin.weight.device)
    a = torch.tensor(alphas, dtype=nxt.weight.dtype, device=nxt.weight.device)
    wide = _empty_linear(lin, lin.in_features, lin.out_features + len(idx))
    wide.weight.copy_(torch.cat([lin.weight, lin.weight[j]]))  # (n + k, n_prev)
    if lin.bias is not None:
        wide.bias.copy_(torch.cat([lin.bias, lin.bias[j]]))
    cols = nxt.weight.clone()  # (n_next, n)
    cols[:, j] = nxt.weight[:, j] * a
    wider_next = _empty_linear(nxt, nxt.in_features + len(idx), nxt.out_features)
    wider_next.weight.copy_(torch.cat([cols, nxt.weight[:, j] * (1 - a)], 1))  # (n_next, n + k)
    if nxt.bias is not None:
        wider_next.bias.copy_(nxt.bias)
    new.net[pos[layer]], new.net[pos[layer + 1]] = wide, wider_next
    return new


def hidden_widths(model: nn.Module) -> list[int]:
    """The hidden widths of a neumo MLP (``hidden`` as it was built, or as splitting left it)."""
    return [m.out_features for m in mlp_linears(model)[:-1]]
