import pytest
import torch

from neumo.errors import NeumoError
from neumo.nn import build_model, model_names
from neumo.nn.base import MEMORY_ROLES
from neumo.nn.positions import POSITION_KINDS, alibi_slopes, sinusoidal

V = 13


def _tf(pos, **kw):
    return build_model("transformer", seed=0, vocab_size=V, d_model=16, n_layers=2, n_heads=2, pos=pos,
                       max_len=64, **kw)


def test_registry_lists_the_shared_models():
    assert {"mlp", "transformer", "rnn", "gru", "lstm"} <= set(model_names())
    with pytest.raises(NeumoError, match="unknown model"):
        build_model("nope", seed=0)
    with pytest.raises(NeumoError, match="no option"):
        build_model("mlp", seed=0, in_dim=2, out_dim=2, hiden=[3])


@pytest.mark.parametrize("pos", POSITION_KINDS)
def test_transformer_shapes_and_causality(pos):
    m = _tf(pos).eval()
    ids = torch.randint(0, V, (3, 20), generator=torch.Generator().manual_seed(0))
    out = m(ids)
    assert out.shape == (3, 20, V)
    changed = ids.clone()
    changed[:, 12:] = (changed[:, 12:] + 1) % V  # change only future tokens
    out2 = m(changed)
    assert torch.allclose(out[:, :12], out2[:, :12], atol=1e-6)
    assert not torch.allclose(out[:, 12:], out2[:, 12:])


@pytest.mark.parametrize("kind", ["rnn", "gru", "lstm"])
def test_recurrent_shapes_causality_state_size(kind):
    m = build_model(kind, seed=0, vocab_size=V, hidden_size=8, num_layers=2).eval()
    ids = torch.randint(0, V, (2, 9), generator=torch.Generator().manual_seed(1))
    out, mem = m(ids, return_memory=True)
    assert out.shape == (2, 9, V) and mem["hidden"].shape == (2, 9, 8)
    changed = ids.clone()
    changed[:, 5:] = (changed[:, 5:] + 3) % V
    assert torch.allclose(out[:, :5], m(changed)[:, :5], atol=1e-6)
    assert m.state_size(100) == 8 * 2 * (2 if kind == "lstm" else 1)
    assert tuple(m.memory_spec()) == MEMORY_ROLES


def test_lstm_cell_states_match_torch():
    m = build_model("lstm", seed=2, vocab_size=V, hidden_size=6, num_layers=1).eval()
    ids = torch.randint(0, V, (2, 7), generator=torch.Generator().manual_seed(2))
    _, mem = m(ids, return_memory=True)
    _, (h, c) = m.rnn(m.embed(ids))
    assert torch.allclose(mem["cell"][:, -1], c[-1], atol=1e-6)


def test_parameter_counts_closed_form():
    d, L, ff, T = 16, 2, 64, 64
    m = _tf("learned")
    per_block = (d * 3 * d + 3 * d) + (d * d + d) + 2 * (2 * d) + (d * ff + ff) + (ff * d + d)
    assert m.num_parameters() == V * d + T * d + L * per_block + 2 * d + d * V
    assert _tf("rope").num_parameters() == m.num_parameters() - T * d
    mlp = build_model("mlp", seed=0, in_dim=64, out_dim=10, hidden=[256, 256])
    assert sum(p.numel() for p in mlp.parameters()) == 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    lstm = build_model("lstm", seed=0, vocab_size=V, hidden_size=8, embed_dim=5)
    assert lstm.num_parameters() == V * 5 + 4 * (8 * 5 + 8 * 8 + 2 * 8) + 8 * V + V


def test_transformer_memory_tensors_and_state_size():
    m = _tf("alibi").eval()
    ids = torch.randint(0, V, (2, 10), generator=torch.Generator().manual_seed(3))
    logits, mem = m(ids, return_memory=True)
    assert mem["residual"].shape == (3, 2, 10, 16)
    assert mem["kv_cache"].shape == (2, 2, 2, 2, 10, 8)
    att = mem["attention"]
    assert att.shape == (2, 2, 2, 10, 10)
    assert torch.allclose(att.sum(-1), torch.ones(2, 2, 2, 10))
    assert torch.all(att.triu(1) == 0)  # causal
    assert torch.allclose(logits, m(ids), atol=1e-6)
    assert m.state_size(10) == 2 * 2 * 16 * 10


def test_learned_positions_refuse_lengths_beyond_max_len():
    with pytest.raises(NeumoError, match="max_len"):
        _tf("learned")(torch.zeros(1, 65, dtype=torch.long))
    assert _tf("rope")(torch.zeros(1, 65, dtype=torch.long)).shape == (1, 65, V)


def test_position_encodings_closed_forms():
    pe = sinusoidal(4, 6)
    assert torch.allclose(pe[:, 0], torch.sin(torch.arange(4.0)))
    assert torch.allclose(pe[:, 1], torch.cos(torch.arange(4.0)))
    assert torch.allclose(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))


def test_forward_is_deterministic():
    m = _tf("sinusoidal").eval()
    ids = torch.randint(0, V, (2, 10), generator=torch.Generator().manual_seed(3))
    assert torch.equal(m(ids), m(ids))
    with pytest.raises(NeumoError, match="token ids"):
        m(torch.full((1, 3), V))


# ---- dropout -------------------------------------------------------------------------------------------

def _mlp(**kw):
    return build_model("mlp", seed=3, in_dim=5, out_dim=2, hidden=[7, 6], **kw)


def test_dropout_zero_is_the_plain_model():
    """dropout=0 adds no module: same parameter names, outputs bit-identical to a plain Sequential."""
    m = _mlp()
    assert list(m.state_dict()) == ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias",
                                    "net.4.weight", "net.4.bias"]
    assert not any("Dropout" in type(x).__name__ for x in m.modules())
    ref = torch.nn.Sequential(*[type(layer)() if not isinstance(layer, torch.nn.Linear) else layer
                                for layer in m.net])
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(m.train()(x), ref(x))
    tf = _tf("learned")
    assert not any("Dropout" in type(x).__name__ for x in tf.modules())


def test_dropout_keeps_the_initialisation_and_is_identity_in_eval():
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    plain, drop = _mlp(), _mlp(dropout=0.4)
    for (n, p), (n2, p2) in zip(plain.state_dict().items(), drop.state_dict().items()):
        assert n == n2 and torch.equal(p, p2)
    assert torch.equal(plain(x), drop.eval()(x))
    assert not torch.equal(plain(x), drop.train()(x))
    ids = torch.randint(0, V, (2, 9), generator=torch.Generator().manual_seed(1))
    tf, tfd = _tf("rope"), _tf("rope", dropout=0.3)
    assert torch.equal(tf.eval()(ids), tfd.eval()(ids))
    assert not torch.allclose(tf.train()(ids), tfd.train()(ids))


def test_dropout_masks_come_from_the_seed_not_the_global_rng():
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    a, b = _mlp(dropout=0.5).train(), _mlp(dropout=0.5).train()
    torch.manual_seed(0)
    ya = a(x)
    torch.manual_seed(123)
    assert torch.equal(ya, b(x))                       # same build seed -> same masks, global RNG irrelevant
    state = torch.random.get_rng_state()
    a(x)
    assert torch.equal(state, torch.random.get_rng_state())
    c = build_model("mlp", seed=4, in_dim=5, out_dim=2, hidden=[7, 6], dropout=0.5).train()
    c.load_state_dict(a.state_dict())
    from neumo.nn.dropout import seed_dropout_
    seed_dropout_(a, 11)
    seed_dropout_(c, 11)
    assert torch.equal(a(x), c(x))


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), "high", True])
def test_dropout_is_validated(bad):
    with pytest.raises(NeumoError, match="dropout"):
        _mlp(dropout=bad)
    with pytest.raises(NeumoError, match="dropout"):
        _tf("learned", dropout=bad)


def test_dropout_without_a_generator_says_how_to_fix():
    from neumo.nn.mlp import MLP
    m = MLP(3, 1, hidden=[4], dropout=0.2)             # built directly, not through build_model
    with pytest.raises(NeumoError, match="build_model"):
        m(torch.zeros(2, 3))
    assert m.eval()(torch.zeros(2, 3)).shape == (2, 1)


def test_dropout_penalty_identity_monte_carlo():
    """Inverted dropout with drop probability q (keep k = 1 - q) on the inputs of linear regression,
    f(x) = b + sum_i w_i m_i x_i / k with m_i ~ Bernoulli(k), loss 1/2 (y - f)^2 averaged over n points:
        E_m[L_drop] = L + q / (2 k) * (1/n) sum_n sum_i w_i^2 x_ni^2,
    because E[m_i / k] = 1 and Var[m_i / k] = q / k (with p = k this is (1 - p) / (2 p) sum w_i^2 x_i^2).
    The model is neumo's MLP with one identity hidden layer, so its dropout acts on the inputs."""
    q, d, n, draws = 0.3, 4, 5, 20000
    m = build_model("mlp", seed=0, in_dim=d, out_dim=1, hidden=[d], activation="linear", dropout=q).double()
    g = torch.Generator().manual_seed(5)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, 1, generator=g, dtype=torch.float64)
    with torch.no_grad():
        m.net[0].weight.copy_(torch.eye(d))
        m.net[0].bias.zero_()
        w = m.net[2].weight[0].detach().clone()
        plain = 0.5 * ((y - m.eval()(x)) ** 2).mean().item()
        m.train()
        losses = torch.tensor([0.5 * ((y - m(x)) ** 2).mean().item() for _ in range(draws)])
    k = 1 - q
    penalty = float((w ** 2 * x ** 2).sum(1).mean())
    expected = plain + q / (2 * k) * penalty
    half = 3.29 * float(losses.std()) / draws ** 0.5     # 99.9% normal interval on the Monte Carlo mean
    mean = float(losses.mean())
    assert abs(mean - expected) < half
    assert abs(mean - plain) > half                        # the penalty is resolved, not lost in the noise
    assert abs(mean - (plain + k / (2 * q) * penalty)) > half   # the swapped convention is excluded
