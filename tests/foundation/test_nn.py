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
