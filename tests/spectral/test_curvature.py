"""Curvature operators and algorithms against dense float64 oracles and scipy."""

import numpy as np
import pytest
import scipy.sparse.linalg as sla
import torch
import torch.nn.functional as F

from neumo.errors import NeumoError
from neumo.spectral.curvature import (EmpiricalFisherOperator, GaussNewtonOperator, HessianOperator, MatrixOperator,
                                      NTKOperator, dense_matrix, gradient_fraction, hutchinson, hutchpp, lanczos, slq)
from neumo.spectral.curvature.params import flatten, unflatten


def tiny(seed=0, dropout=False):
    g = torch.Generator().manual_seed(seed)
    layers = [torch.nn.Linear(4, 6), torch.nn.Tanh()] + ([torch.nn.Dropout(0.5)] if dropout else []) + \
        [torch.nn.Linear(6, 3)]
    model = torch.nn.Sequential(*layers).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.7)
    x = torch.randn(20, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (20,), generator=g)
    return model, x, y


def ce(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def dense_hessian(model, x, y, names=None):
    named = [(n, p) for n, p in model.named_parameters() if names is None or n in names]
    params = [p for _, p in named]

    def f(theta):
        sub = dict(zip([n for n, _ in named], unflatten(theta, params)))
        return F.cross_entropy(torch.func.functional_call(model, sub, (x,)), y)

    return torch.autograd.functional.hessian(f, flatten(p.detach() for p in params))


def snapshot(model):
    return ({n: p.detach().clone() for n, p in model.named_parameters()},
            {n: (None if p.grad is None else p.grad.clone()) for n, p in model.named_parameters()},
            [m.training for m in model.modules()])


def assert_untouched(model, snap):
    params, grads, modes = snap
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), params[n])
        assert (p.grad is None and grads[n] is None) or torch.equal(p.grad, grads[n])
    assert [m.training for m in model.modules()] == modes


@pytest.mark.parametrize("backend", ["double_backward", "func", "finite_difference"])
def test_hessian_backends_match_dense_hessian(backend):
    model, x, y = tiny()
    H = dense_hessian(model, x, y)
    op = HessianOperator(model, ce, (x, y), backend=backend)
    tol = 1e-5 if backend == "finite_difference" else 1e-10
    assert torch.allclose(dense_matrix(op), H, atol=tol, rtol=tol)
    assert op.matvecs == op.size


def test_hessian_parameter_subset():
    model, x, y = tiny()
    op = HessianOperator(model, ce, (x, y), params="2.*")
    H = dense_hessian(model, x, y, names={"2.weight", "2.bias"})
    assert op.size == 6 * 3 + 3
    assert torch.allclose(dense_matrix(op), H, atol=1e-10)
    with pytest.raises(NeumoError, match="no trainable parameter matches"):
        HessianOperator(model, ce, (x, y), params="nothing*")
    with pytest.raises(NeumoError, match="backend"):
        HessianOperator(model, ce, (x, y), backend="magic")


@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
def test_lanczos_top_k_matches_dense_and_eigsh(which):
    model, x, y = tiny(1)
    op = HessianOperator(model, ce, (x, y))
    lam = torch.linalg.eigvalsh(dense_hessian(model, x, y))
    res = lanczos(op, k=4, which=which, tol=1e-9, seed=0)
    order = {"LA": torch.argsort(lam, descending=True), "SA": torch.argsort(lam),
             "LM": torch.argsort(lam.abs(), descending=True)}[which]
    assert res.converged
    assert torch.allclose(res.eigenvalues, lam[order[:4]], atol=1e-8)
    ref = sla.eigsh(op.to_scipy(), k=4, which=which, tol=1e-12)[0]
    key = {"LA": lambda v: -v, "SA": lambda v: v, "LM": lambda v: -abs(v)}[which]
    assert np.allclose(sorted(ref, key=key), res.eigenvalues.numpy(), atol=1e-8)
    # eigenvectors: true residuals are small and agree with the reported estimates
    H = dense_hessian(model, x, y)
    V = res.eigenvectors
    true_res = (H @ V - V * res.eigenvalues).norm(dim=0)
    assert torch.all(true_res < 1e-6)
    assert torch.allclose(V.T @ V, torch.eye(4, dtype=V.dtype), atol=1e-8)


def test_lanczos_planted_matrix_and_validation():
    g = torch.Generator().manual_seed(3)
    Q, _ = torch.linalg.qr(torch.randn(200, 200, generator=g, dtype=torch.float64))
    lam = torch.cat([torch.tensor([50.0, 40.0, 30.0]), torch.rand(197, generator=g, dtype=torch.float64)])
    op = MatrixOperator(Q @ torch.diag(lam) @ Q.T)
    res = lanczos(op, k=3, tol=1e-10)
    assert res.converged and torch.allclose(res.eigenvalues, torch.tensor([50.0, 40.0, 30.0], dtype=torch.float64))
    assert res.matvecs == res.iterations < 200
    with pytest.raises(NeumoError, match="'k'"):
        lanczos(op, k=0)
    with pytest.raises(NeumoError, match="which"):
        lanczos(op, k=1, which="BE")
    short = lanczos(op, k=3, tol=1e-14, max_iter=4)
    assert not short.converged and short.iterations == 4


def test_slq_quadrature_is_exact_on_moments_and_full_run_recovers_spectrum():
    model, x, y = tiny(2)
    H = dense_hessian(model, x, y)
    op = HessianOperator(model, ce, (x, y))
    n = op.size
    full = slq(op, n_probes=1, steps=n, seed=0)
    lam = torch.linalg.eigvalsh(H)
    # with a full Krylov space every node with visible weight is an eigenvalue
    t, w = full.nodes[0], full.weights[0]
    for node in t[w > 1e-8]:
        assert (lam - node).abs().min() < 1e-6
    d = slq(op, n_probes=200, steps=12, seed=1)
    for j in (1, 2, 3):
        exact = float(torch.trace(torch.linalg.matrix_power(H, j))) / n
        assert d.moment(j) == pytest.approx(exact, rel=0.15, abs=1e-3 * abs(float(lam.abs().max())) ** j)
    grid = torch.linspace(float(lam.min()) - 1, float(lam.max()) + 1, 2000)
    mass = float(torch.trapezoid(d.density(grid, 0.05), grid))
    assert mass == pytest.approx(1.0, abs=1e-3)


def test_hutchinson_within_stated_error_and_hutchpp_exact_on_low_rank():
    g = torch.Generator().manual_seed(4)
    A = torch.randn(100, 100, generator=g, dtype=torch.float64)
    A = A @ A.T
    est = hutchinson(MatrixOperator(A), n_probes=200, seed=0)
    assert abs(est.estimate - float(torch.trace(A))) < 4 * est.stderr
    assert est.matvecs == 200
    U = torch.randn(100, 3, generator=g, dtype=torch.float64)
    low = U @ U.T
    pp = hutchpp(MatrixOperator(low), n_matvecs=30, seed=0)
    assert pp.estimate == pytest.approx(float(torch.trace(low)), rel=1e-9)
    with pytest.raises(NeumoError, match="n_probes"):
        hutchinson(MatrixOperator(A), n_probes=1)


def test_gauss_newton_fisher_ntk_against_dense_jacobians():
    model, x, y = tiny(5)
    params = [p for p in model.parameters()]
    names = [n for n, _ in model.named_parameters()]

    def out_fn(theta):
        return torch.func.functional_call(model, dict(zip(names, unflatten(theta, params))), (x,))

    theta = flatten(p.detach() for p in params)
    J = torch.autograd.functional.jacobian(out_fn, theta).reshape(-1, theta.numel())    # (N*C, P)
    out = out_fn(theta).detach()
    HL = torch.autograd.functional.hessian(lambda o: F.cross_entropy(o.reshape(20, 3), y), out.reshape(-1))
    G = dense_matrix(GaussNewtonOperator(model, x, y))
    assert torch.allclose(G, J.T @ HL @ J, atol=1e-10)
    K = dense_matrix(NTKOperator(model, x))
    assert torch.allclose(K, J @ J.T, atol=1e-10)
    # empirical Fisher: (1/N) sum g_i g_i^T with per-sample cross-entropy gradients
    rows = []
    for i in range(20):
        gi = torch.autograd.functional.jacobian(
            lambda th: F.cross_entropy(torch.func.functional_call(model, dict(zip(names, unflatten(th, params))),
                                                                  (x[i: i + 1],)), y[i: i + 1]), theta)
        rows.append(gi)
    Gs = torch.stack(rows)
    Fd = dense_matrix(EmpiricalFisherOperator(model, x, y))
    assert torch.allclose(Fd, Gs.T @ Gs / 20, atol=1e-10)
    # MSE Gauss-Newton: 2/(N*C) J^T J
    t = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    Gm = dense_matrix(GaussNewtonOperator(model, x, t, loss="mse"))
    assert torch.allclose(Gm, 2 / 60 * J.T @ J, atol=1e-10)


def test_operators_leave_model_untouched_even_with_eval_mode():
    model, x, y = tiny(6, dropout=True)
    model.train()
    model[0].eval()  # a mixed-mode model must come back mixed
    (ce(model, (x, y))).backward()  # existing grads must survive
    snap = snapshot(model)
    for backend in ("double_backward", "func", "finite_difference"):
        op = HessianOperator(model, ce, (x, y), backend=backend, eval_mode=True)
        lanczos(op, k=2)
        op.gradient()
        op.loss()
        assert_untouched(model, snap)
    for op in (GaussNewtonOperator(model, x, y, eval_mode=True), EmpiricalFisherOperator(model, x, y, eval_mode=True),
               NTKOperator(model, x, eval_mode=True)):
        slq(op, n_probes=1, steps=3)
        hutchinson(op, n_probes=2)
        assert_untouched(model, snap)


def test_gradient_fraction_closed_form():
    V = torch.eye(5, dtype=torch.float64)[:, :2]
    g = torch.tensor([3.0, 4.0, 0.0, 0.0, 0.0])
    assert gradient_fraction(g, V) == pytest.approx(1.0)
    g2 = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0])
    assert gradient_fraction(g2, V) == pytest.approx(0.5)
    model, x, y = tiny(7)
    op = HessianOperator(model, ce, (x, y))
    ref = torch.autograd.grad(ce(model, (x, y)), list(model.parameters()))
    assert torch.allclose(op.gradient(), flatten(ref), atol=1e-12)
