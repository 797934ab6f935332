"""Permutation symmetry of MLPs: weight matching, permuting, interpolating and the loss barrier.

Permuting the units of a hidden layer (the rows of its weight and bias, the columns of the next weight)
leaves an MLP's function unchanged, because the activation acts unit by unit. ``perms`` is a list with
one ``LongTensor`` per hidden layer: ``p[i] = j`` means unit ``i`` of the permuted model is unit ``j``
of the original (new rows ``W[p]``, new columns ``W_next[:, p]``).

- :func:`weight_matching` (Ainsworth, Hayase & Srinivasa 2023, "Git Re-Basin", weight matching): find
  ``perms`` maximising ``sum_l <W_l^a, P_l W_l^b P_{l-1}^T> + <b_l^a, P_l b_l^b>`` by coordinate descent:
  each hidden layer in turn solves a linear assignment (``scipy.optimize.linear_sum_assignment``) with the
  others fixed, until a sweep changes nothing. ``apply_permutation(model_b, result.perms)`` is then
  model b aligned to model a.
- :func:`apply_permutation`: a new model computing the same function as ``model``.
- :func:`interpolate`: ``(1 - t) sd_a + t sd_b`` tensor by tensor (``torch.lerp``: exact at t = 0 and 1).
- :func:`loss_barrier`: ``max_t loss(theta(t)) - [(1 - t) loss(theta_a) + t loss(theta_b)]`` on a grid.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from neumo.errors import NeumoError
from neumo.spectral._mlp import mlp_linears


@dataclass(frozen=True)
class MatchResult:
    perms: list[torch.Tensor]  # one LongTensor per hidden layer; apply to model b
    objective: float  # sum of weight inner products after matching
    objective_identity: float  # the same sum before matching (identity permutations)
    sweeps: int  # coordinate-descent sweeps over the hidden layers
    converged: bool  # the last sweep changed no permutation


def _check_perms(linears: list[nn.Linear], perms: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    widths = [lin.out_features for lin in linears[:-1]]
    if len(perms) != len(widths):
        raise NeumoError(
            f"The 'perms' parameter must hold one permutation per hidden layer ({len(widths)}). "
            f"Got {len(perms)} instead."
        )
    out = []
    for i, (p, n) in enumerate(zip(perms, widths)):
        p = torch.as_tensor(p, dtype=torch.long)
        if p.shape != (n,) or not torch.equal(torch.sort(p).values, torch.arange(n)):
            raise NeumoError(f"perms[{i}] must be a permutation of range({n}) (hidden layer {i} has {n} units).")
        out.append(p)
    return out


@torch.no_grad()
def apply_permutation(model: nn.Module, perms: Sequence[torch.Tensor]) -> nn.Module:
    """A copy of the MLP ``model`` with hidden units permuted by ``perms``; it computes the same function."""
    linears = mlp_linears(model)
    perms = _check_perms(linears, perms)
    new = copy.deepcopy(model)
    new_linears = mlp_linears(new)
    for i, p in enumerate(perms):
        lin, nxt = new_linears[i], new_linears[i + 1]
        p = p.to(lin.weight.device)
        lin.weight.copy_(lin.weight[p])  # (n_i, n_{i-1}): rows
        if lin.bias is not None:
            lin.bias.copy_(lin.bias[p])
        nxt.weight.copy_(nxt.weight[:, p])  # (n_{i+1}, n_i): columns
    return new


def _layer_gain(la: list[nn.Linear], lb: list[nn.Linear], perms: list[torch.Tensor], i: int) -> torch.Tensor:
    """C[j, k]: the objective's terms that involve unit j of a matched to unit k of b at hidden layer i."""
    wa, wb = la[i].weight.double(), lb[i].weight.double()
    if i > 0:
        wb = wb[:, perms[i - 1]]  # b's inputs aligned to a's previous layer
    c = wa @ wb.T  # (n_i, n_i)
    if la[i].bias is not None:
        c = c + torch.outer(la[i].bias.double(), lb[i].bias.double())
    na, nb = la[i + 1].weight.double(), lb[i + 1].weight.double()
    if i + 1 < len(perms):
        nb = nb[perms[i + 1]]  # b's outputs aligned to a's next layer
    return c + na.T @ nb


def _objective(la, lb, perms) -> float:
    total = 0.0
    for i in range(len(la)):
        wb = lb[i].weight.double()
        if i < len(perms):
            wb = wb[perms[i]]
        if i > 0:
            wb = wb[:, perms[i - 1]]
        total += float((la[i].weight.double() * wb).sum())
        if la[i].bias is not None:
            bb = lb[i].bias.double()
            total += float((la[i].bias.double() * (bb[perms[i]] if i < len(perms) else bb)).sum())
    return total


@torch.no_grad()
def weight_matching(model_a: nn.Module, model_b: nn.Module, max_sweeps: int = 100) -> MatchResult:
    """Permutations of model b's hidden units that best align its weights to model a's (Git Re-Basin)."""
    from scipy.optimize import linear_sum_assignment

    la, lb = mlp_linears(model_a, "model_a"), mlp_linears(model_b, "model_b")
    shapes_a = [tuple(m.weight.shape) for m in la]
    shapes_b = [tuple(m.weight.shape) for m in lb]
    if shapes_a != shapes_b or [m.bias is None for m in la] != [m.bias is None for m in lb]:
        raise NeumoError(f"model_a and model_b must have the same layer shapes; got {shapes_a} and {shapes_b}")
    if max_sweeps < 1:
        raise NeumoError(f"The 'max_sweeps' parameter must be >= 1. Got {max_sweeps!r} instead.")
    perms = [torch.arange(m.out_features) for m in la[:-1]]
    start = _objective(la, lb, perms)
    converged, sweeps = False, 0
    while sweeps < max_sweeps and not converged:
        sweeps += 1
        converged = True
        for i in range(len(perms)):
            gain = _layer_gain(la, lb, perms, i).cpu().numpy()
            rows, cols = linear_sum_assignment(gain, maximize=True)
            new = torch.as_tensor(cols[np.argsort(rows)], dtype=torch.long)
            # keep the current permutation unless the new one is strictly better (no cycling on ties)
            if (
                not torch.equal(new, perms[i])
                and gain[np.arange(len(new)), new.numpy()].sum() > gain[np.arange(len(new)), perms[i].numpy()].sum()
            ):
                perms[i] = new
                converged = False
    return MatchResult(
        perms=perms, objective=_objective(la, lb, perms), objective_identity=start, sweeps=sweeps, converged=converged
    )


def interpolate(
    sd_a: Mapping[str, torch.Tensor], sd_b: Mapping[str, torch.Tensor], t: float
) -> dict[str, torch.Tensor]:
    """``(1 - t) sd_a + t sd_b`` for floating tensors; other tensors (counters) must agree and are kept."""
    if set(sd_a) != set(sd_b):
        diff = sorted(set(sd_a) ^ set(sd_b))
        raise NeumoError(f"the two state dicts must have the same keys; these are in only one: {diff[:5]}")
    t = float(t)
    if not np.isfinite(t):
        raise NeumoError(f"The 't' parameter must be a finite number. Got {t!r} instead.")
    out = {}
    for k, a in sd_a.items():
        b = sd_b[k]
        if a.shape != b.shape:
            raise NeumoError(f"tensor {k!r} has shape {tuple(a.shape)} in sd_a and {tuple(b.shape)} in sd_b")
        if a.is_floating_point():
            out[k] = torch.lerp(a.detach(), b.detach().to(a.dtype), t)
        elif torch.equal(a, b):
            out[k] = a.clone()
        else:
            raise NeumoError(f"non-floating tensor {k!r} differs between the state dicts; it cannot be interpolated")
    return out


@dataclass(frozen=True)
class BarrierResult:
    barrier: float  # max over the grid of loss(t) minus the straight line between the end losses
    t_max: float  # where it is reached
    ts: list[float]
    losses: list[float]  # loss(theta(t)) on the grid
    excess: list[float]  # losses minus the straight line


def loss_barrier(
    model_a: nn.Module, model_b: nn.Module, loss_fn: Callable[[nn.Module], float], n_points: int = 11
) -> BarrierResult:
    """Loss along the straight line from ``model_a``'s to ``model_b``'s parameters (``n_points`` values of t
    in [0, 1], ends included); ``loss_fn(model) -> float`` evaluates a model on the caller's data (called
    under ``torch.no_grad`` on a copy of ``model_a`` holding the interpolated state). The barrier is >= 0
    (the ends have zero excess) and exactly 0 for a model with itself."""
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 2:
        raise NeumoError(f"The 'n_points' parameter must be an integer >= 2. Got {n_points!r} instead.")
    sd_a, sd_b = model_a.state_dict(), model_b.state_dict()
    probe = copy.deepcopy(model_a)
    ts = [float(t) for t in np.linspace(0.0, 1.0, n_points)]
    losses = []
    for t in ts:
        probe.load_state_dict(interpolate(sd_a, sd_b, t))
        with torch.no_grad():
            value = loss_fn(probe)
        losses.append(float(value.item() if torch.is_tensor(value) else value))
    lo, hi = losses[0], losses[-1]
    line = [lo + t * (hi - lo) if t < 0.5 else hi - (1 - t) * (hi - lo) for t in ts]
    excess = [a - b for a, b in zip(losses, line)]
    i = int(np.argmax(excess))
    return BarrierResult(barrier=excess[i], t_max=ts[i], ts=ts, losses=losses, excess=excess)
