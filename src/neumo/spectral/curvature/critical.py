"""Driving a tiny model to a critical point of its loss (for dense-Hessian studies of degenerate minima).

:func:`find_critical_point_` runs full-batch L-BFGS (strong Wolfe line search), then Newton steps on the
dense Hessian with a pseudo-inverse (``torch.linalg.pinv``, relative cut-off ``rcond``), so it also converges
on *degenerate* critical points, where the Hessian has zero eigenvalues (symmetries, flat valleys) and a
plain solve fails. It writes the parameters of ``model`` in place (hence the trailing underscore) and
returns the gradient norm it reached. Tiny problems only: the Newton steps build the dense Hessian.

:func:`levenberg_marquardt_` minimises the half-MSE ``0.5 * mean_i ||model(x_i) - y_i||^2`` by damped
Gauss-Newton steps on the dense Jacobian of the residuals (Levenberg 1944, Marquardt 1963). It converges
fast to zero-residual (interpolating) minima, where L-BFGS crawls along the flat valleys; follow it with
:func:`find_critical_point_` (``lbfgs_iters=0``) to polish a non-zero-residual critical point by Newton.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from neumo.errors import NeumoError
from neumo.spectral.curvature.params import flatten, loss_value, unflatten


@dataclass(frozen=True)
class CriticalPoint:
    grad_norm: float  # the gradient norm at the returned parameters
    loss: float
    newton_steps: int
    converged: bool  # grad_norm <= tol


def find_critical_point_(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, Any], Any],
    batch: Any,
    tol: float = 1e-12,
    lbfgs_iters: int = 2000,
    newton_steps: int = 30,
    rcond: float = 1e-12,
) -> CriticalPoint:
    """Move ``model``'s trainable parameters to a critical point of ``loss_fn(model, batch)`` (in place)."""
    if not tol > 0 or lbfgs_iters < 0 or newton_steps < 0:
        raise NeumoError(
            f"find_critical_point_ needs tol > 0 and non-negative iteration counts; got tol={tol!r}, "
            f"lbfgs_iters={lbfgs_iters!r}, newton_steps={newton_steps!r}"
        )
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise NeumoError("find_critical_point_ found no trainable parameter in the model")
    names, params = [n for n, _ in named], [p for _, p in named]

    def loss_of(theta: torch.Tensor) -> torch.Tensor:
        sub = dict(zip(names, unflatten(theta, params)))
        return _call(model, sub, loss_fn, batch)

    theta = flatten(p.detach() for p in params).clone()
    if lbfgs_iters:
        theta.requires_grad_(True)
        opt = torch.optim.LBFGS(
            [theta],
            lr=1,
            max_iter=lbfgs_iters,
            tolerance_grad=tol,
            tolerance_change=0.0,
            history_size=50,
            line_search_fn="strong_wolfe",
        )

        def closure():
            opt.zero_grad()
            loss = loss_of(theta)
            loss.backward()
            return loss

        opt.step(closure)
        theta = theta.detach()
    steps = 0
    g = torch.func.grad(loss_of)(theta)
    best, best_g = theta, float(g.norm())
    while steps < newton_steps and best_g > tol:
        # reverse-over-reverse: forward-mode AD (torch.func.hessian) can fail to load its decompositions
        # under TorchScript in some processes ("Unknown builtin op: aten::sym_float")
        h = torch.autograd.functional.hessian(loss_of, theta)
        theta = theta - torch.linalg.pinv(h, rtol=rcond, hermitian=True) @ g
        steps += 1
        g = torch.func.grad(loss_of)(theta)
        if float(g.norm()) < best_g:
            best, best_g = theta, float(g.norm())
    with torch.no_grad():
        for p, t in zip(params, unflatten(best, params)):
            p.copy_(t)
        loss = float(loss_value(loss_fn(model, batch)))
    return CriticalPoint(grad_norm=best_g, loss=loss, newton_steps=steps, converged=best_g <= tol)


def levenberg_marquardt_(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    iters: int = 200,
    tol: float = 1e-12,
    damping: float = 1e-3,
) -> CriticalPoint:
    """Fit ``model(x) ~ y`` in place by Levenberg-Marquardt on ``0.5 * mean_i ||model(x_i) - y_i||^2``."""
    if iters < 0 or not tol > 0 or not damping > 0:
        raise NeumoError(
            f"levenberg_marquardt_ needs iters >= 0, tol > 0 and damping > 0; got iters={iters!r}, "
            f"tol={tol!r}, damping={damping!r}"
        )
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    names, params = [n for n, _ in named], [p for _, p in named]
    scale = float(len(x)) ** -0.5

    def residual(theta: torch.Tensor) -> torch.Tensor:  # (n * out,): 0.5 ||r||^2 is the loss
        out = torch.func.functional_call(model, dict(zip(names, unflatten(theta, params))), (x,))
        return ((out - y) * scale).reshape(-1)

    theta = flatten(p.detach() for p in params).clone()
    lam, steps = float(damping), 0
    eye = torch.eye(theta.numel(), dtype=theta.dtype, device=theta.device)
    r = residual(theta)
    for steps in range(1, iters + 1):
        jac = torch.func.jacrev(residual)(theta)  # (n * out, size)
        g = jac.T @ r
        if float(g.norm()) <= tol:
            break
        jj, cost = jac.T @ jac, float(r @ r)
        while lam < 1e12:
            new = theta - torch.linalg.solve(jj + lam * eye, g)
            r_new = residual(new)
            if float(r_new @ r_new) < cost:
                theta, r, lam = new, r_new, max(lam / 3, 1e-15)
                break
            lam *= 4
        else:
            break  # no decrease at any damping: a critical point
    with torch.no_grad():
        for p, t in zip(params, unflatten(theta, params)):
            p.copy_(t)
    jac = torch.func.jacrev(residual)(theta)
    gn = float((jac.T @ r).norm())
    return CriticalPoint(grad_norm=gn, loss=0.5 * float(r @ r), newton_steps=steps, converged=gn <= tol)


def _call(model, sub, loss_fn, batch):
    """``loss_fn(model, batch)`` with the parameters ``sub`` substituted (``torch.func.functional_call``)."""
    wrapper = _Wrapped(model, loss_fn, batch)
    return torch.func.functional_call(wrapper, {f"model.{k}": v for k, v in sub.items()}, ())


class _Wrapped(torch.nn.Module):
    def __init__(self, model, loss_fn, batch):
        super().__init__()
        self.model, self.loss_fn, self.batch = model, loss_fn, batch

    def forward(self):
        return loss_value(self.loss_fn(self.model, self.batch))


__all__ = ["CriticalPoint", "find_critical_point_", "levenberg_marquardt_"]
