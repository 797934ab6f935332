import pytest
import torch

from neumo.errors import NeumoError
from neumo.nn import build_model
from neumo.spectral.symmetry import apply_permutation, interpolate, loss_barrier, weight_matching

HIDDEN = [12, 10, 8]


def _mlp(seed=0, act="relu", hidden=HIDDEN, **kw):
    return build_model("mlp", seed=seed, in_dim=6, out_dim=3, hidden=hidden, activation=act, **kw).double()


def _planted(seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randperm(n, generator=g) for n in HIDDEN]


def _x(n=32):
    return torch.randn(n, 6, generator=torch.Generator().manual_seed(9), dtype=torch.float64)


@pytest.mark.parametrize("act", ["relu", "tanh", "gelu"])
def test_permuted_network_computes_the_same_function(act):
    a = _mlp(act=act)
    b = apply_permutation(a, _planted())
    x = _x()
    assert torch.allclose(a(x), b(x), rtol=0, atol=1e-12)
    assert not torch.equal(a.net[0].weight, b.net[0].weight)          # the weights did move
    assert a.net[0].weight.data_ptr() != b.net[0].weight.data_ptr()   # and a is untouched (a copy)


def test_a_non_matching_reindexing_changes_the_function():
    """The control: permuting rows without the matching columns is not a symmetry."""
    a = _mlp()
    b = apply_permutation(a, _planted())
    with torch.no_grad():
        b.net[2].weight.copy_(a.net[2].weight)                        # undo only the column permutation
    assert not torch.allclose(a(_x()), b(_x()), atol=1e-6)


@pytest.mark.parametrize("bias", [True, False])
def test_weight_matching_recovers_a_planted_permutation_exactly(bias):
    a = _mlp(bias=bias)
    planted = _planted()
    b = apply_permutation(a, planted)
    res = weight_matching(a, b)
    assert res.converged
    for found, p in zip(res.perms, planted):
        assert torch.equal(p[found], torch.arange(len(p)))            # found = planted^{-1}
    back = apply_permutation(b, res.perms)
    for (k, v), (k2, v2) in zip(a.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert res.objective == pytest.approx(sum(float((v ** 2).sum()) for v in a.state_dict().values()))
    assert res.objective > res.objective_identity


def test_weight_matching_never_lowers_the_objective_on_independent_models():
    a, b = _mlp(seed=0), _mlp(seed=5)
    res = weight_matching(a, b)
    assert res.converged and res.objective > res.objective_identity
    x = _x()
    assert torch.allclose(apply_permutation(b, res.perms)(x), b(x), atol=1e-12)


def test_weight_matching_and_permutation_refuse_bad_input():
    a = _mlp()
    with pytest.raises(NeumoError, match="same layer shapes"):
        weight_matching(a, _mlp(hidden=[12, 10, 9]))
    with pytest.raises(NeumoError, match="must be a neumo MLP"):
        weight_matching(a, torch.nn.Linear(2, 2))
    with pytest.raises(NeumoError, match="one permutation per hidden layer"):
        apply_permutation(a, _planted()[:2])
    bad = _planted()
    bad[1] = torch.zeros(10, dtype=torch.long)
    with pytest.raises(NeumoError, match=r"perms\[1\] must be a permutation of range\(10\)"):
        apply_permutation(a, bad)


def test_interpolate_is_exact_at_the_ends_and_linear_between():
    a, b = _mlp(seed=0), _mlp(seed=1)
    sa, sb = a.state_dict(), b.state_dict()
    for k in sa:
        assert torch.equal(interpolate(sa, sb, 0.0)[k], sa[k])
        assert torch.equal(interpolate(sa, sb, 1.0)[k], sb[k])
        assert torch.allclose(interpolate(sa, sb, 0.25)[k], 0.75 * sa[k] + 0.25 * sb[k], atol=1e-15)
    with pytest.raises(NeumoError, match="same keys"):
        interpolate(sa, {k: v for k, v in sb.items() if k != "net.0.bias"}, 0.5)
    with pytest.raises(NeumoError, match="shape"):
        interpolate(sa, _mlp(hidden=[12, 10, 9]).state_dict(), 0.5)


def _mse(x, y):
    return lambda m: float(((m(x) - y) ** 2).mean().detach())


def test_loss_barrier_of_a_model_with_itself_is_zero():
    a = _mlp()
    x = _x()
    y = torch.zeros(32, 3, dtype=torch.float64)
    res = loss_barrier(a, a, _mse(x, y), n_points=7)
    assert res.barrier == 0.0 and len(res.ts) == len(res.losses) == 7
    assert res.ts[0] == 0.0 and res.ts[-1] == 1.0


def test_loss_barrier_closed_form_between_a_model_and_its_negation():
    """loss(theta) = -|theta|^2 with theta_b = -theta_a: loss(t) = -(1 - 2t)^2 |theta_a|^2 and both ends
    equal -|theta_a|^2, so the excess is 4 t (1 - t) |theta_a|^2, at most |theta_a|^2 at t = 1/2."""
    a = _mlp()
    b = _mlp()
    with torch.no_grad():
        for p in b.parameters():
            p.neg_()
    sq = sum(float((p.detach() ** 2).sum()) for p in a.parameters())
    res = loss_barrier(a, b, lambda m: -sum(float((p ** 2).sum()) for p in m.parameters()), n_points=5)
    assert res.t_max == 0.5
    assert res.barrier == pytest.approx(sq, rel=1e-12)
    for t, e in zip(res.ts, res.excess):
        assert e == pytest.approx(4 * t * (1 - t) * sq, rel=1e-12, abs=1e-12)
    with pytest.raises(NeumoError, match="'n_points' parameter must be an integer >= 2"):
        loss_barrier(a, b, lambda m: 0.0, n_points=1)


def test_matching_removes_the_barrier_between_permuted_copies():
    """A model and a permuted copy fit the same targets exactly (loss 0 at both ends): the straight line
    between them leaves that minimum (measured barrier about 1.8e-4), the line after matching stays on it."""
    a = _mlp()
    b = apply_permutation(a, _planted())
    x = _x()
    y = a(x).detach()
    raw = loss_barrier(a, b, _mse(x, y), n_points=5)
    aligned = loss_barrier(a, apply_permutation(b, weight_matching(a, b).perms), _mse(x, y), n_points=5)
    assert raw.barrier > 1e-5
    assert aligned.barrier == 0.0
