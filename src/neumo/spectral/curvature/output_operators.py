"""Operators built from the network's output Jacobian J = d f(x; theta) / d theta.

- :class:`GaussNewtonOperator`: G = J^T H_L J, H_L the Hessian of the loss w.r.t. the outputs.
- :class:`EmpiricalFisherOperator`: F = (1/N) sum_i g_i g_i^T, g_i the gradient of sample i's loss.
- :class:`NTKOperator`: the NTK Gram matrix K = J J^T on (N * C) outputs (empirical NTK).

The model is evaluated with ``torch.func.functional_call`` on detached copies of the parameters, so
the caller's parameters, gradients and (unless ``eval_mode`` is given) mode are untouched.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from neumo.errors import NeumoError
from neumo.spectral.curvature.operators import Operator
from neumo.spectral.curvature.params import flatten, model_mode, select_parameters, unflatten


def output_loss(loss: str | Callable) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``"cross_entropy"`` (mean over samples), ``"mse"`` (mean over all entries) or a callable(out, y)."""
    if callable(loss):
        return loss
    if loss == "cross_entropy":
        return lambda out, y: F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    if loss == "mse":
        # written out: F.mse_loss has no forward-over-reverse rule in torch 2.x (ZeroTensor error)
        return lambda out, y: ((out - y) ** 2).mean()
    raise NeumoError(f"The 'loss' parameter must be 'cross_entropy', 'mse' or a callable. Got {loss!r} instead.")


class _OutputOperator(Operator):
    def __init__(self, model, inputs, params=None, eval_mode: bool | None = None):
        super().__init__()
        self.model, self.inputs, self.eval_mode = model, inputs, eval_mode
        named = select_parameters(model, params)
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.n_params = sum(p.numel() for p in self.params)
        self.dtype, self.device = self.params[0].dtype, self.params[0].device
        self._vjp_closure: Callable[..., Any] | None = None

    def _out_at(self, theta: torch.Tensor) -> torch.Tensor:
        sub = dict(zip(self.names, unflatten(theta, self.params)))
        with model_mode(self.model, self.eval_mode):
            return torch.func.functional_call(self.model, sub, (self.inputs,))

    def _theta(self) -> torch.Tensor:
        return flatten(p.detach() for p in self.params)

    def _jvp(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f(theta), J v) by reverse-over-reverse: u -> J^T u is linear, so J v is its vjp with cotangent v.
        (Forward-mode AD is avoided: its lazily scripted decompositions fail to load in some processes.)"""
        first = torch.func.vjp(self._out_at, self._theta())
        out, vjp_fn = first[0], first[1]
        vjp_of_vjp = torch.func.vjp(lambda u: vjp_fn(u)[0], torch.zeros_like(out))[1]
        return out, vjp_of_vjp(v)[0]

    def _vjp(self, u: torch.Tensor) -> torch.Tensor:
        """J^T u; the vjp closure is built at the first call and reused (the parameters are fixed)."""
        if self._vjp_closure is None:
            self._vjp_closure = torch.func.vjp(self._out_at, self._theta())[1]
        return self._vjp_closure(u)[0]


class _LossOperator(_OutputOperator):
    """An operator on parameter space (size P) of ``loss(model(inputs), targets)``."""

    def __init__(
        self,
        model: torch.nn.Module,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        loss: str | Callable = "cross_entropy",
        params: str | Sequence[str] | None = None,
        eval_mode: bool | None = None,
    ):
        super().__init__(model, inputs, params, eval_mode)
        self.targets, self.loss = targets, output_loss(loss)
        self.size = self.n_params


class GaussNewtonOperator(_LossOperator):
    """Generalised Gauss-Newton J^T H_L J for ``loss(model(inputs), targets)``."""

    def _matvec(self, v):
        out, jv = self._jvp(v)
        # H_L jv as a vjp of the output gradient (H_L is symmetric), again without forward-mode AD
        _, hvp = torch.func.vjp(torch.func.grad(lambda o: self.loss(o, self.targets)), out.detach())
        return self._vjp(hvp(jv)[0].clone())


class EmpiricalFisherOperator(_LossOperator):
    """(1/N) sum_i g_i g_i^T with per-sample gradients from ``vmap(grad)`` (kept as an N x P matrix)."""

    _G: torch.Tensor | None = None

    def per_sample_gradients(self) -> torch.Tensor:
        """(N, P): the gradient of each sample's loss (the loss evaluated on a batch of one)."""
        if self._G is None:

            def one(theta, x, y):
                sub = dict(zip(self.names, unflatten(theta, self.params)))
                out = torch.func.functional_call(self.model, sub, (x.unsqueeze(0),))
                return self.loss(out, y.unsqueeze(0))

            with model_mode(self.model, self.eval_mode):
                self._G = torch.func.vmap(torch.func.grad(one), in_dims=(None, 0, 0))(
                    self._theta(), self.inputs, self.targets
                ).detach()
        return self._G

    def _matvec(self, v):
        G = self.per_sample_gradients()
        return G.T @ (G @ v) / G.shape[0]


class NTKOperator(_OutputOperator):
    """The empirical NTK Gram matrix J J^T, of size N * C (outputs flattened sample-major)."""

    def __init__(
        self,
        model: torch.nn.Module,
        inputs: torch.Tensor,
        params: str | Sequence[str] | None = None,
        eval_mode: bool | None = None,
    ):
        super().__init__(model, inputs, params, eval_mode)
        with torch.no_grad():
            self.out_shape = self._out_at(self._theta()).shape
        self.size = self.out_shape.numel()

    def _matvec(self, u):
        w = self._vjp(u.reshape(self.out_shape))  # J^T u   (P,)
        return self._jvp(w)[1].reshape(-1)  # J J^T u (N * C,)
