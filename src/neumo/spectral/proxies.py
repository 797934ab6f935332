"""Zero-cost proxies at initialisation, from one small batch. None trains, none changes the model.

- :func:`grad_norm`: the gradient of ``loss_fn(model, batch)`` at the current weights; ``norm`` is the
  global L2 norm, ``layer_sum`` the sum of per-tensor Frobenius norms (the "grad_norm" aggregate of
  Abdelfattah et al. 2021, "Zero-cost proxies for lightweight NAS"), ``per_parameter`` each tensor's.
- :func:`synflow` (Tanaka et al. 2020, "Pruning neural networks without any data by iteratively
  conserving synaptic flow"): on a float64 copy with every parameter replaced by its absolute value and
  an all-ones input ``(1, *input_shape)``, ``R = sum f(1; |theta|)``; the score of a parameter is
  ``|theta * dR/dtheta|`` and the proxy their sum. Working on a copy leaves the caller's signs as they were.
- :func:`ntk_gram` / :func:`ntk_summary`: the empirical NTK Gram ``K = J J^T`` on the ``N * C`` outputs of
  a small batch (J the (N*C, P) Jacobian, by ``torch.func.jacrev``, sample-major), its eigenvalues, the
  condition number ``lambda_max / lambda_min`` (inf when lambda_min <= 0 up to rounding) and the effective
  rank ``entropy_rank`` (Roy & Vetterli 2007) of the eigenvalues.
- :func:`naswot` (Mellor et al. 2021, "Neural architecture search without training", ICML): the binary
  code c_i of input i is which ReLU units are active; ``K_H[i, j] = N_A - Hamming(c_i, c_j)`` (the number
  of units on which inputs i and j agree) and the score is ``log |det K_H|`` (-inf when K_H is singular,
  e.g. two inputs with the same code).
- :func:`jacob_cov` (the first, 2020 arXiv version of the same paper): J_i = d sum_c f_c(x_i) / d x_i,
  Sigma the correlation matrix of the J_i, eigenvalues lambda, score ``-sum log(lambda + k) + 1/(lambda + k)``
  with k = 1e-5; NaN when some input's Jacobian is constant (e.g. every path through dead ReLUs), where its
  correlation with the others is undefined.

Train/eval mode: :func:`grad_norm`, :func:`ntk_gram` and :func:`naswot` use the model as it is unless
``eval_mode`` is given (then it is switched for the call and restored); :func:`synflow` evaluates its copy
in eval mode (no dropout).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from neumo.errors import NeumoError
from neumo.ranks import entropy_rank
from neumo.spectral.curvature.params import loss_value, model_mode, select_parameters


@dataclass(frozen=True)
class GradNorm:
    norm: float  # sqrt(sum of squared entries over all parameters)
    layer_sum: float  # sum over tensors of their Frobenius norms
    per_parameter: dict[str, float]


def grad_norm(
    model: nn.Module, loss_fn: Callable, batch, params: str | Sequence[str] | None = None, eval_mode: bool | None = None
) -> GradNorm:
    """Norms of the gradient of ``loss_fn(model, batch)`` (a loss or ``(loss, outputs)``); ``.grad`` untouched."""
    named = select_parameters(model, params)
    with model_mode(model, eval_mode), torch.enable_grad():
        loss = loss_value(loss_fn(model, batch))
        grads = torch.autograd.grad(loss, [p for _, p in named], allow_unused=True)
    per = {n: (0.0 if g is None else float(g.detach().double().norm())) for (n, _), g in zip(named, grads)}
    return GradNorm(norm=math.sqrt(sum(v * v for v in per.values())), layer_sum=sum(per.values()), per_parameter=per)


@dataclass(frozen=True)
class SynFlow:
    score: float  # sum over all parameters of |theta * dR/dtheta|
    per_parameter: dict[str, torch.Tensor]  # the elementwise scores (float64), shaped like the parameters


def synflow(model: nn.Module, input_shape: Sequence[int]) -> SynFlow:
    """SynFlow on a float64 copy of ``model`` with |theta| and an all-ones input of shape (1, *input_shape)."""
    probe = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in probe.parameters():
            p.abs_()
    named = [(n, p) for n, p in probe.named_parameters() if p.requires_grad]
    if not named:
        raise NeumoError("the model has no trainable parameter; SynFlow scores parameters")
    device = named[0][1].device
    ones = torch.ones((1, *input_shape), dtype=torch.float64, device=device)
    with torch.enable_grad():
        r = probe(ones).sum()
        grads = torch.autograd.grad(r, [p for _, p in named], allow_unused=True)
    per = {n: (torch.zeros_like(p) if g is None else (p.detach() * g).abs()) for (n, p), g in zip(named, grads)}
    return SynFlow(score=float(sum(s.sum() for s in per.values())), per_parameter=per)


def ntk_gram(
    model: nn.Module, inputs: torch.Tensor, params: str | Sequence[str] | None = None, eval_mode: bool | None = None
) -> torch.Tensor:
    """The empirical NTK Gram J J^T, (N*C, N*C), rows sample-major ((sample 0, out 0), (0, 1), ...)."""
    named = select_parameters(model, params)
    names = [n for n, _ in named]
    theta = {n: p.detach() for n, p in named}

    def f(th):
        return torch.func.functional_call(model, th, (inputs,)).reshape(-1)  # (N*C,)

    with model_mode(model, eval_mode):
        jac = torch.func.jacrev(f)(theta)
    J = torch.cat([jac[n].reshape(jac[n].shape[0], -1) for n in names], 1)  # (N*C, P)
    return J @ J.T


@dataclass(frozen=True)
class NTKSummary:
    eigenvalues: torch.Tensor  # descending, float64
    condition_number: float  # lambda_max / lambda_min; inf if lambda_min <= 0 up to rounding
    effective_rank: float  # entropy_rank of the eigenvalues (Roy & Vetterli 2007)
    trace: float


def ntk_summary(
    model: nn.Module, inputs: torch.Tensor, params: str | Sequence[str] | None = None, eval_mode: bool | None = None
) -> NTKSummary:
    K = ntk_gram(model, inputs, params, eval_mode).double()
    ev = torch.linalg.eigvalsh((K + K.T) / 2).flip(0)
    top, low = float(ev[0]), float(ev[-1])
    tol = max(top, 0.0) * ev.numel() * torch.finfo(K.dtype).eps
    cond = top / low if low > tol else math.inf
    return NTKSummary(
        eigenvalues=ev, condition_number=cond, effective_rank=entropy_rank(ev.clamp(min=0)), trace=float(ev.sum())
    )


def naswot(model: nn.Module, inputs: torch.Tensor, eval_mode: bool | None = None) -> float:
    """log |det K_H| of the ReLU activation-pattern kernel over the batch (Mellor et al. 2021)."""
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    if not relus:
        raise NeumoError("naswot needs ReLU units (nn.ReLU modules); build the model with activation='relu'")
    codes: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda mod, inp, out: codes.append((out > 0).flatten(1))) for m in relus]
    try:
        with model_mode(model, eval_mode), torch.no_grad():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    c = torch.cat(codes, 1).double()  # (N, N_A)
    K = c @ c.T + (1 - c) @ (1 - c).T  # agreements = N_A - Hamming
    return float(torch.linalg.slogdet(K).logabsdet)


def jacob_cov(model: nn.Module, inputs: torch.Tensor, k: float = 1e-5, eval_mode: bool | None = None) -> float:
    """-sum log(lambda + k) + 1/(lambda + k) over the eigenvalues of the correlation of input Jacobians."""
    if inputs.shape[0] < 2:
        raise NeumoError(f"jacob_cov needs a batch of at least 2 inputs. Got {inputs.shape[0]}.")
    x = inputs.detach().clone().requires_grad_(True)
    with model_mode(model, eval_mode), torch.enable_grad():
        (g,) = torch.autograd.grad(model(x).sum(), x)
    J = g.reshape(g.shape[0], -1).double()  # (N, D)
    if bool((J.std(1) == 0).any()):
        return math.nan  # a constant row: no correlation
    ev = torch.linalg.eigvalsh(torch.corrcoef(J))
    return float(-(torch.log(ev + k) + 1.0 / (ev + k)).sum())
