import pytest
import torch

from neumo.errors import NeumoError
from neumo.nn import build_model
from neumo.spectral.embedding import hidden_widths, split_neurons


def _mlp(seed=0, act="tanh", hidden=(5, 4), bias=True):
    return build_model("mlp", seed=seed, in_dim=3, out_dim=2, hidden=list(hidden), activation=act,
                       bias=bias).double()


def _data(n=24):
    g = torch.Generator().manual_seed(2)
    return torch.randn(n, 3, generator=g, dtype=torch.float64), torch.randn(n, 2, generator=g, dtype=torch.float64)


def _grads(model, x, y):
    model.zero_grad()
    (0.5 * ((model(x) - y) ** 2).sum(1).mean()).backward()
    return [lin.weight.grad.clone() for lin in model.net if isinstance(lin, torch.nn.Linear)], \
           [lin.bias.grad.clone() for lin in model.net if isinstance(lin, torch.nn.Linear)]


@pytest.mark.parametrize("act", ["relu", "tanh", "gelu", "linear"])
@pytest.mark.parametrize("layer", [0, 1])
def test_split_preserves_the_function(act, layer):
    m = _mlp(act=act)
    wide = split_neurons(m, layer, [0, 3], alpha=[0.3, -1.5])
    x, _ = _data()
    assert hidden_widths(wide) == [5 + 2 * (layer == 0), 4 + 2 * (layer == 1)]
    assert hidden_widths(m) == [5, 4]                                  # the original is untouched
    assert torch.allclose(wide(x), m(x), rtol=0, atol=1e-12)
    n_params = sum(p.numel() for p in m.parameters())
    fan = 3 if layer == 0 else 5
    assert sum(p.numel() for p in wide.parameters()) == n_params + 2 * (fan + 1 + (4 if layer == 0 else 2))


def test_a_wrong_split_would_change_the_function():
    """The control: copying the unit without rescaling its outgoing weights doubles its contribution."""
    m = _mlp()
    wide = split_neurons(m, 0, 2, alpha=1.0)              # alpha = 1: the copy gets zero outgoing weight
    with torch.no_grad():
        wide.net[2].weight[:, 5] = m.net[2].weight[:, 2]  # give it the full weight as well
    x, _ = _data()
    assert not torch.allclose(wide(x), m(x), atol=1e-6)


def test_split_gradients_are_the_original_ones_shared_by_alpha():
    m = _mlp()
    a = 0.25
    wide = split_neurons(m, 0, [1], alpha=a)
    x, y = _data()
    (gw, gb), (ww, wb) = _grads(m, x, y), _grads(wide, x, y)
    # incoming weights and bias: alpha and (1 - alpha) times the original gradient of unit 1
    assert torch.allclose(ww[0][1], a * gw[0][1], atol=1e-12)
    assert torch.allclose(ww[0][5], (1 - a) * gw[0][1], atol=1e-12)
    assert torch.allclose(wb[0][5], (1 - a) * gb[0][1], atol=1e-12)
    # outgoing weights: both copies see the original gradient (the same activation)
    assert torch.allclose(ww[1][:, 1], gw[1][:, 1], atol=1e-12)
    assert torch.allclose(ww[1][:, 5], gw[1][:, 1], atol=1e-12)
    assert torch.allclose(ww[0][[0, 2, 3, 4]], gw[0][[0, 2, 3, 4]], atol=1e-12)


def _critical_point(m, x, y):
    """L-BFGS, then Newton steps on the dense Hessian until the gradient norm is below 1e-13."""
    names = [n for n, _ in m.named_parameters()]
    shapes = [p.shape for p in m.parameters()]

    def loss_of(theta):
        parts, i = {}, 0
        for n, s in zip(names, shapes):
            parts[n] = theta[i:i + s.numel()].view(s)
            i += s.numel()
        return 0.5 * ((torch.func.functional_call(m, parts, (x,)) - y) ** 2).sum(1).mean()

    theta = torch.cat([p.detach().reshape(-1) for p in m.parameters()]).requires_grad_()
    opt = torch.optim.LBFGS([theta], lr=1, max_iter=1000, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = loss_of(theta)
        loss.backward()
        return loss

    opt.step(closure)
    theta = theta.detach()
    for _ in range(10):
        g = torch.func.grad(loss_of)(theta)
        if g.norm() < 1e-13:
            break
        theta = theta - torch.linalg.solve(torch.func.hessian(loss_of)(theta), g)
    with torch.no_grad():
        i = 0
        for p in m.parameters():
            p.copy_(theta[i:i + p.numel()].view_as(p))
            i += p.numel()
    return m


def _norm(model, x, y):
    gw, gb = _grads(model, x, y)
    return torch.cat([g.reshape(-1) for g in gw + gb]).norm().item()


def test_a_critical_point_stays_critical_after_splitting():
    """A 2-unit student of a 6-unit tanh teacher: Newton converges to a strict local minimum with loss
    about 1e-3 (measured), not an interpolation; splitting both units keeps the gradient at that level."""
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        y = 3 * _mlp(seed=7, hidden=(6,))(x)
    m = _critical_point(_mlp(hidden=(2,)), x, y)
    narrow = _norm(m, x, y)
    assert narrow < 1e-12                                               # a critical point of the narrow net
    assert float(0.5 * ((m(x) - y) ** 2).sum(1).mean().detach()) > 1e-4        # and not a zero-loss interpolation
    assert _norm(split_neurons(m, 0, [0, 1], alpha=0.3), x, y) < 10 * narrow + 1e-13
    with torch.no_grad():
        m.net[0].weight[0, 0] += 1e-3                                  # the control: off the critical point
    assert _norm(split_neurons(m, 0, [0], alpha=0.3), x, y) > 1e3 * narrow


def test_split_validates_its_arguments():
    m = _mlp()
    with pytest.raises(NeumoError, match=r"'layer' parameter must be a hidden-layer index in \[0, 2\)"):
        split_neurons(m, 2, [0])
    with pytest.raises(NeumoError, match=r"unit indices in \[0, 5\)"):
        split_neurons(m, 0, [5])
    with pytest.raises(NeumoError, match="unit indices"):
        split_neurons(m, 0, [])
    with pytest.raises(NeumoError, match="lists a unit twice"):
        split_neurons(m, 0, [1, 1])
    with pytest.raises(NeumoError, match="one per neuron"):
        split_neurons(m, 0, [1, 2], alpha=[0.5])
    with pytest.raises(NeumoError, match="finite number"):
        split_neurons(m, 0, [1], alpha=float("nan"))
    with pytest.raises(NeumoError, match="neumo MLP"):
        split_neurons(torch.nn.Linear(2, 2), 0, [0])


def test_split_without_bias_and_with_dropout_in_eval():
    m = build_model("mlp", seed=1, in_dim=3, out_dim=2, hidden=[4], bias=False, dropout=0.5).double().eval()
    wide = split_neurons(m, 0, [2])
    x, _ = _data()
    assert wide.net[0].bias is None and not wide.training
    assert torch.allclose(wide(x), m(x), atol=1e-12)
