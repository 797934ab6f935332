import numpy as np
import pytest
import torch

from neumo.memory.automata import cyclic_dfa, random_dfa
from neumo.memory.probes import (attention_entropy, compare, decode_over_delay, entropy_by_length, extract,
                                 hidden_effective_rank, mean_entropy, model_states, uniform_entropy)
from neumo.memory.tasks import make_task, task_rng
from neumo.nn import build_model


class HandBuiltRNN(torch.nn.Module):
    """h_t = one-hot of the true DFA state (+ a fixed offset per state): states are exact by construction."""

    def __init__(self, dfa, noise=0.0, seed=0):
        super().__init__()
        self.dfa, self.noise, self.seed = dfa, noise, seed

    def forward(self, ids, return_memory=False):
        states = torch.as_tensor(self.dfa.run(ids.numpy()))
        h = torch.nn.functional.one_hot(states, self.dfa.n_states).double()
        g = torch.Generator().manual_seed(self.seed)
        h = h + self.noise * torch.randn(h.shape, generator=g, dtype=torch.float64)
        out = torch.as_tensor(self.dfa.output)[states]
        logits = torch.nn.functional.one_hot(out, int(self.dfa.output.max()) + 1).double()
        return (logits, {"hidden": h}) if return_memory else logits


@pytest.mark.parametrize("method", ["kmeans", "grid"])
@pytest.mark.parametrize("machine", ["z3", "random4"])
def test_extraction_recovers_hand_built_machine(method, machine):
    d = cyclic_dfa(3) if machine == "z3" else random_dfa(4, 2, seed=0)
    net = HandBuiltRNN(d, noise=0.01)
    ids = torch.as_tensor(np.random.default_rng(0).integers(0, d.n_symbols, size=(64, 12)))
    h, p = model_states(net, ids)
    ex = extract(h, ids.numpy(), p, d.n_symbols, method=method, k=6, bins=3, n_components=d.n_states)
    held = np.random.default_rng(1).integers(0, d.n_symbols, size=(50, 30))
    c = compare(ex, d, d.run(ids.numpy()), held)
    assert c.equivalent and c.counterexample is None
    assert c.state_map_acc == 1.0 and c.heldout_agreement == 1.0
    assert c.n_states_extracted == c.n_states_true == d.n_states


def test_extraction_detects_a_wrong_machine():
    d, wrong = cyclic_dfa(3), cyclic_dfa(2)
    net = HandBuiltRNN(wrong)
    ids = torch.as_tensor(np.random.default_rng(0).integers(0, 2, size=(32, 10)))
    h, p = model_states(net, ids)
    ex = extract(h, ids.numpy(), p, 2, k=2)
    truth = cyclic_dfa(3)
    import numpy as _np
    from neumo.memory.automata import DFA
    truth2 = DFA(truth.delta[:, :2], 0, _np.array([0, 1, 0]))   # Z_3 over {0, 1}, output "odd residue"
    c = compare(ex, truth2, truth2.run(ids.numpy()), _np.random.default_rng(2).integers(0, 2, size=(40, 20)))
    assert not c.equivalent and c.counterexample is not None and c.heldout_agreement < 1.0


def test_decoding_over_delay_on_a_shift_register():
    # h_t holds one-hot x_t, x_{t-1}, x_{t-2}: items up to delay 2 decode perfectly, delay 4 at chance
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, size=(200, 16))
    oh = np.eye(4)[x]
    h = np.concatenate([oh, np.roll(oh, 1, 1), np.roll(oh, 2, 1)], -1)
    h[:, :1, 4:] = 0
    h[:, :2, 8:] = 0
    res = decode_over_delay(h, x, [0, 1, 2, 4], seed=0)
    assert all(res[d]["acc"] == 1.0 for d in (0, 1, 2))
    assert res[4]["acc"] < 0.35 and abs(res[4]["baseline"] - 0.25) < 0.05


def test_attention_entropy_closed_form():
    T = 7
    att = torch.tril(torch.ones(T, T)) / torch.arange(1, T + 1)[:, None]
    assert np.allclose(attention_entropy(att).numpy(), uniform_entropy(T))
    onehot = torch.eye(T)
    assert attention_entropy(onehot).abs().max() == 0
    full = att.expand(2, 3, 4, T, T)
    assert mean_entropy(full, last_only=True) == pytest.approx(np.log(T))


def test_entropy_by_length_of_untrained_transformer_grows():
    m = build_model("transformer", seed=0, vocab_size=2, out_dim=2, d_model=16, n_heads=2, n_layers=1, pos="none",
                    max_len=64)
    e = entropy_by_length(m, make_task("parity"), [4, 16, 64], seed=0, n=16)
    assert e[4] < e[16] < e[64] <= np.log(64) + 1e-9


def test_hidden_effective_rank_against_planted_spectrum():
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((200, 3)))
    v, _ = np.linalg.qr(rng.standard_normal((10, 3)))
    h = u @ np.diag([3.0, 2.0, 1.0]) @ v.T
    r = hidden_effective_rank(h, center=False)
    assert r["stable_rank"] == pytest.approx((9 + 4 + 1) / 9)
    assert r["participation_ratio"] == pytest.approx(14 ** 2 / (81 + 16 + 1))


def test_model_states_shapes_for_every_memory_layout():
    ids = torch.zeros(3, 5, dtype=torch.long)
    for name, key, knobs in [("lstm", "hidden", {"hidden_size": 6}), ("transformer", "residual", {"d_model": 8}),
                             ("linear_attention", "state", {"d_model": 8, "n_heads": 2})]:
        m = build_model(name, seed=0, vocab_size=2, out_dim=2, **({"n_heads": 2} if name == "transformer" else {}),
                        **knobs)
        h, p = model_states(m, ids, key)
        assert h.shape[:2] == (3, 5) and h.ndim == 3 and p.shape == (3, 5)
    with pytest.raises(Exception, match="no memory tensor 'cell'"):
        model_states(build_model("gru", seed=0, vocab_size=2, hidden_size=4), ids, "cell")
