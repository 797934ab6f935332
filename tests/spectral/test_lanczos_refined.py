"""lanczos_refined: eigenpairs of the exact operator from a perturbed surrogate, with exact residuals and a
certificate (``converged``) that holds against dense eigendecompositions; HessianOperator's bf16 precision."""

import pytest
import torch
import torch.nn.functional as F

from neumo.errors import NeumoError
from neumo.spectral.curvature import HessianOperator, MatrixOperator, dense_matrix, lanczos_refined


def _pair(n=300, noise=1e-3, seed=0):
    """A symmetric A with five separated outliers over a bulk in [0, 1], and A + E with ||E|| = noise ||A||."""
    g = torch.Generator().manual_seed(seed)
    lam = torch.cat([torch.tensor([20.0, 15.0, 11.0, 8.0, 6.0]), torch.rand(n - 5, generator=g, dtype=torch.float64)])
    Q = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))[0]
    A = (Q * lam) @ Q.T
    E = torch.randn(n, n, generator=g, dtype=torch.float64)
    E = (E + E.T) / 2
    E *= noise * 20.0 / float(torch.linalg.matrix_norm(E, ord=2))
    return A, A + E


@pytest.mark.parametrize("which", ["LA", "SA"])
def test_refined_eigenpairs_meet_tol_against_dense_and_residuals_are_exact(which):
    A, S = _pair()
    A, S = (A, S) if which == "LA" else (-A, -S)
    op, sur = MatrixOperator(A), MatrixOperator(S)
    r = lanczos_refined(op, sur, k=5, which=which, tol=1e-8, seed=1)
    want = torch.linalg.eigvalsh(A)
    want = want.flip(0)[:5] if which == "LA" else want[:5]
    assert r.converged and r.matvecs >= 5
    assert torch.allclose(r.eigenvalues, want, rtol=1e-8, atol=0)
    X = r.eigenvectors
    true_res = torch.linalg.vector_norm(A @ X - X * r.eigenvalues, dim=0)
    assert torch.allclose(r.residuals, true_res, rtol=1e-6, atol=1e-12)
    # the surrogate alone is off by about its perturbation
    alone = torch.linalg.eigvalsh(S)
    alone = alone.flip(0)[:5] if which == "LA" else alone[:5]
    assert float((alone - want).abs().max()) > 1e-6


def test_a_poor_surrogate_is_refined_until_the_bound_holds_or_reported_unconverged():
    A, S = _pair(noise=0.05, seed=2)
    want = torch.linalg.eigvalsh(A).flip(0)[:5]
    none = lanczos_refined(MatrixOperator(A), MatrixOperator(S), k=5, tol=1e-10, refinements=0, seed=0)
    assert not none.converged and none.matvecs == 5
    more = lanczos_refined(MatrixOperator(A), MatrixOperator(S), k=5, tol=1e-10, refinements=6, seed=0)
    assert more.converged and more.matvecs > 5
    assert torch.allclose(more.eigenvalues, want, rtol=1e-10, atol=0)
    # and the unrefined values were indeed off by more than tol (the flag was right to say so)
    assert float(((none.eigenvalues - want).abs() / want).max()) > 1e-10


def _small_problem():
    """A tanh MLP, a batch and its cross-entropy loss; the generator for further draws."""
    torch.manual_seed(0)  # test-only: initialises the nn.Linear layers
    model = torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 3))
    g = torch.Generator().manual_seed(1)
    batch = (torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g))

    def loss(m, b):
        return F.cross_entropy(m(b[0]), b[1])

    return model, batch, loss, g


def test_refined_hessian_with_a_bf16_surrogate_matches_the_dense_hessian():
    model, batch, loss, g = _small_problem()
    exact = HessianOperator(model, loss, batch)
    sur = HessianOperator(model, loss, batch, precision="bf16")
    H = dense_matrix(exact).double()
    want = torch.linalg.eigvalsh((H + H.T) / 2).flip(0)[:3]
    v = torch.randn(exact.size, generator=g)
    hv, sv = exact.matvec(v), sur.matvec(v)
    rel = float((sv - hv).norm() / hv.norm())
    assert 1e-5 < rel < 5e-2 and sv.dtype == hv.dtype  # inexact, at bf16 level
    r = lanczos_refined(exact, sur, k=3, tol=1e-4, seed=0)
    assert r.converged
    assert torch.allclose(r.eigenvalues, want, rtol=1e-4, atol=1e-6)


def test_bad_arguments_are_one_line_errors():
    A, S = _pair(n=40)
    with pytest.raises(NeumoError, match="size"):
        lanczos_refined(MatrixOperator(A), MatrixOperator(S[:30, :30]), k=2)
    with pytest.raises(NeumoError, match="'k'"):
        lanczos_refined(MatrixOperator(A), MatrixOperator(S), k=0)
    with pytest.raises(NeumoError, match="extra"):
        lanczos_refined(MatrixOperator(A), MatrixOperator(S), k=2, extra=-1)
    with pytest.raises(NeumoError, match="which"):
        lanczos_refined(MatrixOperator(A), MatrixOperator(S), k=2, which="BE")
    model = torch.nn.Linear(3, 2)
    with pytest.raises(NeumoError, match="precision"):
        HessianOperator(model, lambda m, b: m(b).sum(), torch.randn(4, 3), precision="fp8")
    with pytest.raises(NeumoError, match="finite_difference"):
        HessianOperator(model, lambda m, b: m(b).sum(), torch.randn(4, 3), precision="bf16",
                        backend="finite_difference")
    with pytest.raises(NeumoError, match="float32 parameters"):  # autocast would leave float64 untouched
        HessianOperator(model.double(), lambda m, b: m(b).sum(), torch.randn(4, 3, dtype=torch.float64),
                        precision="bf16")


@pytest.mark.parametrize("backend", ["double_backward", "func"])
def test_bf16_products_are_inexact_at_bf16_level_for_each_backend(backend):
    model, batch, loss, g = _small_problem()
    v = torch.randn(sum(p.numel() for p in model.parameters()), generator=g)
    exact = HessianOperator(model, loss, batch, backend=backend).matvec(v)
    bf16 = HessianOperator(model, loss, batch, backend=backend, precision="bf16").matvec(v)
    assert bf16.dtype == torch.float32 and 1e-4 < float((bf16 - exact).norm() / exact.norm()) < 2e-2
