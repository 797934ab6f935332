"""Lanczos's eigenvalue stopping rule: the top-k it stops at are within tol (relative) of a dense Hessian
eigendecomposition and of scipy eigsh, with no more matrix-vector products than the residual rule."""

import numpy as np
import pytest
import scipy.sparse.linalg as sla
import torch
import torch.nn.functional as F

from neumo.errors import NeumoError
from neumo.spectral.curvature import HessianOperator, MatrixOperator, lanczos
from neumo.spectral.curvature.lanczos import eigenvalue_error_bound
from neumo.spectral.curvature.params import flatten, unflatten


def mlp(seed=0):
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.8)
    x = torch.randn(64, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (64,), generator=g)
    return model, x, y


def dense_hessian(model, x, y):
    names, params = zip(*model.named_parameters())

    def f(theta):
        return F.cross_entropy(torch.func.functional_call(model, dict(zip(names, unflatten(theta, params))), (x,)), y)

    return torch.autograd.functional.hessian(f, flatten(p.detach() for p in params))


def rel_err(got, want):
    return float(np.max(np.abs(np.asarray(got) - np.asarray(want)) / np.abs(np.asarray(want))))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("tol", [1e-3, 1e-6])
def test_eigenvalue_rule_meets_tol_against_the_dense_hessian(seed, tol):
    model, x, y = mlp(seed)
    lam = torch.linalg.eigvalsh(dense_hessian(model, x, y)).flip(0)[:5].numpy()
    op = HessianOperator(model, lambda m, b: F.cross_entropy(m(b[0]), b[1]), (x, y))
    fast = lanczos(op, k=5, tol=tol, criterion="eigenvalue", seed=seed, return_vectors=False)
    slow = lanczos(op, k=5, tol=tol, criterion="residual", seed=seed, return_vectors=False)
    assert fast.converged and fast.eigenvalues.shape == (5,)
    assert rel_err(fast.eigenvalues, lam) <= tol
    assert fast.matvecs <= slow.matvecs


def planted(seed, spectrum):
    g = torch.Generator().manual_seed(seed)
    n = 400
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    lam = {"decaying": 10.0 * 0.8 ** torch.arange(n, dtype=torch.float64),
           "outliers": torch.cat([torch.tensor([30.0, 20.0, 15.0, 12.0, 10.0], dtype=torch.float64),
                                  torch.randn(n - 5, generator=g, dtype=torch.float64)]),
           "cluster": torch.cat([torch.tensor([5.0, 4.99, 4.98, 3.0, 2.9], dtype=torch.float64),
                                 torch.rand(n - 5, generator=g, dtype=torch.float64) * 2])}[spectrum]
    return Q @ torch.diag(lam) @ Q.T


@pytest.mark.parametrize("spectrum", ["decaying", "outliers", "cluster"])
@pytest.mark.parametrize("seed", [0, 1])
def test_eigenvalue_rule_agrees_with_scipy_eigsh(spectrum, seed):
    A = planted(seed, spectrum)
    ref = np.sort(sla.eigsh(A.numpy(), k=5, which="LA", tol=1e-12, return_eigenvectors=False))[::-1]
    for tol in (1e-2, 1e-3, 1e-5):
        res = lanczos(MatrixOperator(A), k=5, tol=tol, criterion="eigenvalue", seed=seed, max_iter=400)
        assert res.converged
        assert rel_err(res.eigenvalues, ref) <= tol, (tol, res.eigenvalues, ref)


def test_error_bound_is_min_of_residual_and_quadratic_gap_bound():
    theta = torch.tensor([1.0, 2.0, 10.0], dtype=torch.float64)
    idx = torch.tensor([2, 1])
    res = torch.tensor([0.5, 2.0], dtype=torch.float64)
    b = eigenvalue_error_bound(theta, idx, res)
    assert torch.allclose(b, torch.tensor([0.25 / 8.0, 2.0], dtype=torch.float64))
    one = eigenvalue_error_bound(torch.tensor([3.0], dtype=torch.float64), torch.tensor([0]),
                                 torch.tensor([0.1], dtype=torch.float64))
    assert torch.allclose(one, torch.tensor([0.1], dtype=torch.float64))
    with pytest.raises(NeumoError, match="criterion"):
        lanczos(MatrixOperator(torch.eye(3, dtype=torch.float64)), k=1, criterion="fast")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_basis_stays_orthonormal_to_working_precision(dtype):
    """The DGKS rule (a second reorthogonalisation pass only when the first removed much) keeps the Krylov
    basis orthonormal to working precision on a spectrum that makes plain Lanczos lose orthogonality
    (a few outliers converge early, then 150 more steps), and the Ritz values do not duplicate."""
    from neumo.spectral.curvature.lanczos import lanczos_basis
    from neumo.spectral.curvature.operators import MatrixOperator

    n = 400
    g = torch.Generator().manual_seed(3)
    lam = torch.cat([torch.tensor([50.0, 40.0, 30.0]), torch.rand(n - 3, generator=g, dtype=torch.float64)])
    Qr = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))[0]
    A = ((Qr * lam) @ Qr.T).to(dtype)
    Q, alpha, beta = lanczos_basis(MatrixOperator(A), torch.randn(n, generator=g, dtype=dtype), 150)
    eps = torch.finfo(dtype).eps
    Qd = Q.double()
    assert float((Qd @ Qd.T - torch.eye(Q.shape[0], dtype=torch.float64)).abs().max()) < 50 * eps
    a, b = torch.tensor(alpha, dtype=torch.float64), torch.tensor(beta[:-1], dtype=torch.float64)
    top = sorted(torch.linalg.eigvalsh(a.diag() + b.diag(1) + b.diag(-1)).tolist())[-4:]
    assert top[-3:] == pytest.approx([30.0, 40.0, 50.0], rel=50 * eps) and top[0] < 1.0  # no ghost copies
