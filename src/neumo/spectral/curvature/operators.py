"""Matrix-free curvature operators: anything with ``size`` and ``matvec(v) -> A v``.

Operators never change the caller's model: parameters are read, never written; gradients come from
``torch.autograd.grad`` / ``torch.func`` and never touch ``.grad``; train/eval mode is only switched
when ``eval_mode`` is given, and restored after each use.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from neumo.errors import NeumoError, check_choice
from neumo.spectral.curvature.params import flatten, loss_value, model_mode, select_parameters, unflatten

HVP_BACKENDS = ("double_backward", "func", "finite_difference")
HVP_PRECISIONS = ("native", "bf16")


class Operator:
    """Base class: a symmetric linear map on R^size that counts its matrix-vector products."""

    size: int
    dtype: torch.dtype
    device: torch.device

    def __init__(self) -> None:
        self.matvecs = 0

    def _matvec(self, v: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``A v`` for a flat vector ``v`` (size,)."""
        self.matvecs += 1
        with torch.enable_grad():
            return self._matvec(v.to(self.dtype)).detach()

    def to_scipy(self):
        """A ``scipy.sparse.linalg.LinearOperator`` view (float64 numpy in and out), e.g. for ``eigsh``."""
        from scipy.sparse.linalg import LinearOperator

        def mv(x):
            y = self.matvec(torch.as_tensor(np.ravel(x), device=self.device).to(self.dtype))
            return y.double().cpu().numpy()

        return LinearOperator((self.size, self.size), matvec=mv, dtype=np.float64)


class MatrixOperator(Operator):
    """A dense symmetric matrix as an operator (tests, oracles, small problems)."""

    def __init__(self, A: torch.Tensor):
        super().__init__()
        self.A = A
        self.size, self.dtype, self.device = A.shape[0], A.dtype, A.device

    def _matvec(self, v):
        return self.A @ v


class _LossModule(torch.nn.Module):
    """Wraps ``loss_fn(model, batch)`` so ``torch.func.functional_call`` can substitute parameters."""

    def __init__(self, model, loss_fn, batch):
        super().__init__()
        self.model, self.loss_fn, self.batch = model, loss_fn, batch

    def forward(self):
        return loss_value(self.loss_fn(self.model, self.batch))


class HessianOperator(Operator):
    """Hessian of ``loss_fn(model, batch)`` w.r.t. the selected parameters.

    Backends: ``double_backward`` (the first-order graph is built once and reused by every product),
    ``func`` (reverse-over-reverse ``torch.func.vjp`` of ``torch.func.grad``) and ``finite_difference``
    (central differences of gradients, step ``fd_eps`` scaled by the parameter norm).

    ``precision="bf16"`` computes the loss, its graph and every product under bfloat16 autocast (vectors
    in and out stay in the parameters' dtype): an inexact but cheaper operator, off by about 2^-8
    relative, made to serve as the surrogate of :func:`~neumo.spectral.curvature.refine.lanczos_refined`.
    It is fast only where the CPU or GPU has native bf16 kernels (on other CPUs bf16 matmuls are emulated and
    far slower: bench/bf16_matmul.py).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: Callable[[torch.nn.Module, Any], Any],
        batch: Any,
        params: str | Sequence[str] | None = None,
        backend: str = "double_backward",
        eval_mode: bool | None = None,
        fd_eps: float | None = None,
        precision: str = "native",
    ):
        super().__init__()
        check_choice("backend", backend, HVP_BACKENDS)
        check_choice("precision", precision, HVP_PRECISIONS)
        self.precision = precision
        self.model, self.loss_fn, self.batch, self.backend, self.eval_mode = model, loss_fn, batch, backend, eval_mode
        named = select_parameters(model, params)
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.size = sum(p.numel() for p in self.params)
        self.dtype, self.device = self.params[0].dtype, self.params[0].device
        if precision == "bf16" and backend == "finite_difference":
            raise NeumoError(
                "precision='bf16' with backend='finite_difference' would divide bf16 rounding errors by the step; "
                "use backend='double_backward' or 'func'"
            )
        if precision == "bf16" and self.dtype != torch.float32:
            raise NeumoError(
                f"precision='bf16' needs float32 parameters (bf16 autocast leaves {self.dtype} as it is); "
                "use precision='native' or a float32 model"
            )
        self.fd_eps = fd_eps
        self._wrapped = _LossModule(model, loss_fn, batch)
        self._graph: tuple[torch.Tensor, ...] | None = None

    # ----------------------------------------------------------------- functional helpers
    def _theta(self) -> torch.Tensor:
        return flatten(p.detach() for p in self.params)

    def _loss_at(self, theta: torch.Tensor) -> torch.Tensor:
        tensors = unflatten(theta, self.params)
        sub = {f"model.{n}": t for n, t in zip(self.names, tensors)}
        return torch.func.functional_call(self._wrapped, sub, ())

    def _grad_at(self, theta: torch.Tensor) -> torch.Tensor:
        theta = theta.detach().requires_grad_(True)
        with model_mode(self.model, self.eval_mode):
            (g,) = torch.autograd.grad(self._loss_at(theta), theta)
        return g

    # ----------------------------------------------------------------- public
    def loss(self) -> float:
        with torch.no_grad(), model_mode(self.model, self.eval_mode):
            return float(self._wrapped())

    def gradient(self) -> torch.Tensor:
        """The flat gradient of the loss at the current parameters (size,)."""
        with torch.enable_grad():
            return self._grad_at(self._theta())

    def _matvec(self, v):
        if self.precision == "native":
            return self._product(v)
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            return self._product(v).to(self.dtype)

    def _product(self, v):
        if self.backend == "double_backward":
            if self._graph is None:
                with model_mode(self.model, self.eval_mode):
                    loss = self._wrapped()
                    self._graph = torch.autograd.grad(loss, self.params, create_graph=True)
            hv = torch.autograd.grad(
                self._graph, self.params, grad_outputs=unflatten(v, self.params), retain_graph=True, allow_unused=True
            )
            return flatten(torch.zeros_like(p) if h is None else h for h, p in zip(hv, self.params))
        theta = self._theta()
        if self.backend == "func":
            with model_mode(self.model, self.eval_mode):
                # reverse-over-reverse (H is symmetric, so H v is the vjp of the gradient); forward-mode AD's
                # lazily scripted decompositions fail to load in some processes with this torch
                return torch.func.vjp(torch.func.grad(self._loss_at), theta)[1](v)[0]
        eps = self.fd_eps or float(torch.finfo(self.dtype).eps) ** (1 / 3)
        h = eps * (1.0 + float(theta.norm())) / max(float(v.norm()), 1e-30)
        return (self._grad_at(theta + h * v) - self._grad_at(theta - h * v)) / (2 * h)
