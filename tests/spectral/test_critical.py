"""find_critical_point_ and levenberg_marquardt_: oracles are a closed-form least-squares fit and the dense
gradient; both write the model in place and validate their arguments."""

from __future__ import annotations

import pytest
import torch

from neumo.errors import NeumoError
from neumo.nn import build_model
from neumo.spectral.curvature import HessianOperator, find_critical_point_, levenberg_marquardt_


def _mse(model, batch):
    x, y = batch
    return 0.5 * ((model(x) - y) ** 2).sum(1).mean()


def _data(n=40, d=3, out=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, out, generator=g, dtype=torch.float64)


def test_levenberg_marquardt_matches_closed_form_least_squares():
    x, y = _data()
    m = build_model("mlp", seed=0, in_dim=3, out_dim=2, hidden=[], activation="linear").double()
    res = levenberg_marquardt_(m, x, y, iters=50)
    xa = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    sol = torch.linalg.lstsq(xa, y).solution                     # (4, 2): weight^T and bias
    assert torch.allclose(m.net[0].weight.detach(), sol[:3].T, atol=1e-10)
    assert torch.allclose(m.net[0].bias.detach(), sol[3], atol=1e-10)
    with torch.no_grad():
        assert res.loss == pytest.approx(float(_mse(m, (x, y))), rel=1e-12) and res.converged


def test_levenberg_marquardt_interpolates_a_realisable_teacher():
    x, _ = _data(n=30)
    teacher = build_model("mlp", seed=5, in_dim=3, out_dim=2, hidden=[3], activation="tanh").double()
    with torch.no_grad():
        y = teacher(x)
    student = build_model("mlp", seed=1, in_dim=3, out_dim=2, hidden=[12], activation="tanh").double()
    res = levenberg_marquardt_(student, x, y, iters=300)
    with torch.no_grad():
        assert res.loss < 1e-10 and float(_mse(student, (x, y))) == pytest.approx(res.loss, rel=1e-6, abs=1e-14)


def test_find_critical_point_reaches_a_zero_gradient():
    x, _ = _data(n=64)
    with torch.no_grad():   # a 2-unit student of a 6-unit teacher: a strict minimum, not an interpolation
        y = 3 * build_model("mlp", seed=7, in_dim=3, out_dim=2, hidden=[6], activation="tanh").double()(x)
    m = build_model("mlp", seed=0, in_dim=3, out_dim=2, hidden=[2], activation="tanh").double()
    with torch.no_grad():
        before = float(_mse(m, (x, y)))
    res = find_critical_point_(m, _mse, (x, y), tol=1e-12)
    g = HessianOperator(m, _mse, (x, y)).gradient()                # the gradient at the written parameters
    assert res.converged and float(g.norm()) <= 1e-12 and float(g.norm()) == pytest.approx(res.grad_norm, abs=1e-13)
    assert res.loss < before


def test_arguments_are_validated():
    x, y = _data()
    m = build_model("mlp", seed=0, in_dim=3, out_dim=2, hidden=[2]).double()
    with pytest.raises(NeumoError, match="tol > 0"):
        find_critical_point_(m, _mse, (x, y), tol=0.0)
    with pytest.raises(NeumoError, match="iters >= 0"):
        levenberg_marquardt_(m, x, y, iters=-1)
