import math

import numpy as np
import pytest
import torch

from neumo.errors import NeumoError
from neumo.nn import build_model
from neumo.spectral.curvature import NTKOperator, dense_matrix
from neumo.spectral.proxies import grad_norm, jacob_cov, naswot, ntk_gram, ntk_summary, synflow

D, H, C, N = 4, 5, 3, 6


def _linear_net(seed=0):
    """f(x) = W2 W1 x: a 2-layer linear network without biases (closed forms below)."""
    return build_model("mlp", seed=seed, in_dim=D, out_dim=C, hidden=[H], activation="linear", bias=False).double()


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.randn(N, D, generator=g, dtype=torch.float64), torch.randn(N, C, generator=g, dtype=torch.float64)


def _mse(model, batch):
    x, y = batch
    return 0.5 * ((model(x) - y) ** 2).sum(1).mean()


def test_grad_norm_matches_the_closed_form_of_a_linear_net():
    m = _linear_net()
    W1, W2 = m.net[0].weight.detach(), m.net[2].weight.detach()
    x, y = _batch()
    r = (x @ W1.T @ W2.T - y) / N                       # dL/df per sample, (N, C)
    g2 = r.T @ (x @ W1.T)                               # dL/dW2 = sum_n r_n h_n^T
    g1 = W2.T @ r.T @ x                                 # dL/dW1 = W2^T sum_n r_n x_n^T
    res = grad_norm(m, _mse, (x, y))
    assert res.per_parameter["net.0.weight"] == pytest.approx(float(g1.norm()), rel=1e-12)
    assert res.per_parameter["net.2.weight"] == pytest.approx(float(g2.norm()), rel=1e-12)
    assert res.norm == pytest.approx(math.hypot(float(g1.norm()), float(g2.norm())), rel=1e-12)
    assert res.layer_sum == pytest.approx(float(g1.norm() + g2.norm()), rel=1e-12)
    assert all(p.grad is None for p in m.parameters())  # .grad untouched


def test_synflow_matches_the_closed_form_and_leaves_the_model_alone():
    """R = 1^T |W2| |W1| 1; score(W1)_jk = |W1_jk| sum_i |W2_ij|, score(W2)_ij = |W2_ij| sum_k |W1_jk|;
    each layer's scores sum to R (degree-1 homogeneity), so the proxy is 2 R."""
    m = build_model("mlp", seed=0, in_dim=D, out_dim=C, hidden=[H], activation="linear", bias=False)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    A1, A2 = m.net[0].weight.detach().double().abs(), m.net[2].weight.detach().double().abs()
    R = float(A2.sum(0) @ A1.sum(1))
    res = synflow(m, (D,))
    assert torch.allclose(res.per_parameter["net.0.weight"], A1 * A2.sum(0)[:, None], rtol=1e-12, atol=0)
    assert torch.allclose(res.per_parameter["net.2.weight"], A2 * A1.sum(1)[None, :], rtol=1e-12, atol=0)
    assert res.score == pytest.approx(2 * R, rel=1e-12)
    assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())   # signs and dtype kept
    assert m.net[0].weight.dtype == torch.float32 and (m.net[0].weight < 0).any()


def test_synflow_ignores_the_signs_but_not_the_magnitudes():
    m = _linear_net()
    flipped = _linear_net()
    with torch.no_grad():
        flipped.net[0].weight.neg_()
    assert synflow(flipped, (D,)).score == pytest.approx(synflow(m, (D,)).score, rel=1e-12)
    with torch.no_grad():
        flipped.net[0].weight.mul_(2)
    assert synflow(flipped, (D,)).score == pytest.approx(2 * synflow(m, (D,)).score, rel=1e-12)  # R doubles


def _dense_jacobian(model, x):
    params = list(model.parameters())
    out = model(x).reshape(-1)
    rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(o, params, retain_graph=True)]) for o in out]
    return torch.stack(rows)


def test_ntk_gram_against_a_dense_jacobian_and_the_linear_closed_form():
    m = build_model("mlp", seed=2, in_dim=D, out_dim=C, hidden=[H], activation="tanh").double()
    x, _ = _batch()
    K = ntk_gram(m, x)
    J = _dense_jacobian(m, x)
    assert K.shape == (N * C, N * C)
    assert torch.allclose(K, J @ J.T, atol=1e-12)
    assert torch.allclose(K, dense_matrix(NTKOperator(m, x)), atol=1e-12)
    lin = _linear_net()
    W1, W2 = lin.net[0].weight.detach(), lin.net[2].weight.detach()
    h = x @ W1.T
    # K[(n, c), (m, d)] = delta_cd h_n.h_m + (W2 W2^T)_cd x_n.x_m
    closed = torch.kron(h @ h.T, torch.eye(C, dtype=torch.float64)) + torch.kron(x @ x.T, W2 @ W2.T)
    assert torch.allclose(ntk_gram(lin, x), closed, atol=1e-12)


def test_ntk_summary_condition_number_and_effective_rank():
    m = build_model("mlp", seed=2, in_dim=D, out_dim=C, hidden=[16], activation="tanh").double()
    x, _ = _batch()
    s = ntk_summary(m, x)
    ev = np.linalg.eigvalsh(ntk_gram(m, x).numpy())[::-1]
    assert np.allclose(s.eigenvalues.numpy(), ev, rtol=1e-10, atol=1e-12)
    assert s.condition_number == pytest.approx(ev[0] / ev[-1], rel=1e-8)
    p = ev / ev.sum()
    assert s.effective_rank == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-10)
    assert 1 <= s.effective_rank <= N * C
    dup = torch.cat([x[:2], x[:1]])                     # a repeated input makes K singular
    assert ntk_summary(m, dup).condition_number == math.inf


def test_naswot_against_an_explicit_hamming_kernel():
    m = build_model("mlp", seed=3, in_dim=D, out_dim=C, hidden=[7, 6], activation="relu").double()
    x = torch.randn(5, D, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    h1 = torch.relu(m.net[0](x))
    h2 = torch.relu(m.net[2](h1))
    codes = torch.cat([h1 > 0, h2 > 0], 1).numpy()
    n_a = codes.shape[1]
    K = np.array([[n_a - int((codes[i] != codes[j]).sum()) for j in range(5)] for i in range(5)], dtype=float)
    assert naswot(m, x) == pytest.approx(np.linalg.slogdet(K)[1], rel=1e-12)
    assert naswot(m, torch.cat([x, x[:1]])) == -math.inf          # two inputs, one code: singular
    with pytest.raises(NeumoError, match="needs ReLU units"):
        naswot(_linear_net(), x)


def test_jacob_cov_closed_form_for_a_linear_net_and_numpy_otherwise():
    """A linear net has the same input Jacobian for every input: the correlation matrix is all ones, with
    eigenvalues N and 0 (N - 1 times), so the score is -[log(N + k) + 1/(N + k) + (N - 1)(log k + 1/k)]."""
    k = 1e-5
    x, _ = _batch()
    closed = -(math.log(N + k) + 1 / (N + k) + (N - 1) * (math.log(k) + 1 / k))
    assert jacob_cov(_linear_net(), x) == pytest.approx(closed, rel=1e-6)
    m = build_model("mlp", seed=3, in_dim=D, out_dim=C, hidden=[16], activation="tanh").double()
    xr = x.clone().requires_grad_(True)
    m(xr).sum().backward()
    ev = np.linalg.eigvalsh(np.corrcoef(xr.grad.numpy()))
    assert jacob_cov(m, x) == pytest.approx(-np.sum(np.log(ev + k) + 1 / (ev + k)), rel=1e-8)
    assert jacob_cov(m, x) > closed                              # distinct Jacobians score higher
    with pytest.raises(NeumoError, match="at least 2 inputs"):
        jacob_cov(m, x[:1])


def test_proxies_keep_the_callers_mode():
    m = build_model("mlp", seed=0, in_dim=D, out_dim=C, hidden=[H], dropout=0.5).double().train()
    x, y = _batch()
    ntk_gram(m, x, eval_mode=True)
    naswot(m, x, eval_mode=True)
    synflow(m, (D,))
    assert m.training and all(mod.training for mod in m.modules())
    assert torch.equal(ntk_gram(m, x, eval_mode=True), ntk_gram(m.eval(), x))


def test_jacob_cov_is_nan_when_an_inputs_jacobian_is_constant():
    m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        m[0].bias.zero_()
    x = torch.tensor([[1.0, 2.0, 0.0], [-1.0, -1.0, 0.0], [2.0, 1.0, 0.0]])   # row 2: both units dead
    assert math.isnan(jacob_cov(m, x))
