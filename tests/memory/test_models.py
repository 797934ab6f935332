import pytest
import torch

from neumo.memory.train import MemoryRunConfig, train_on_task
from neumo.nn import build_model
from neumo.nn.linear_attention import parallel_linear_attention, recurrent_linear_attention
from neumo.train import TrainConfig


def test_linear_attention_forms_agree_float64():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 9, 4, generator=g, dtype=torch.float64) for _ in range(3))
    y_par = parallel_linear_attention(q, k, v)
    y_rec, S = recurrent_linear_attention(q, k, v)
    assert torch.allclose(y_par, y_rec, atol=1e-12)
    # the state at step t is the sum of outer products phi(k_s) v_s^T for s <= t
    from neumo.nn.linear_attention import phi
    ref = torch.einsum("bhsi,bhsj->bhij", phi(k[:, :, :5]), v[:, :, :5])
    assert torch.allclose(S[:, :, 4], ref, atol=1e-12)


def test_linear_attention_model_forms_and_memory():
    m = build_model("linear_attention", seed=0, vocab_size=6, d_model=16, n_heads=2, n_layers=2).double()
    ids = torch.randint(0, 6, (3, 7), generator=torch.Generator().manual_seed(1))
    logits, mem = m(ids, return_memory=True)
    assert torch.allclose(m(ids), logits, atol=1e-10)
    assert mem["state"].shape == (2, 3, 2, 7, 8, 8)
    assert m.state_size(10) == m.state_size(1000) == 2 * 2 * 8 * 9
    assert set(m.memory_spec()) == {"working", "short_term", "long_term"}


def test_linear_attention_is_causal():
    m = build_model("linear_attention", seed=0, vocab_size=6, d_model=16, n_heads=2)
    a = torch.tensor([[1, 2, 3, 4, 5]])
    b = torch.tensor([[1, 2, 3, 0, 0]])
    assert torch.allclose(m(a)[:, :3], m(b)[:, :3], atol=1e-6)


def test_memory_transformer_segments_and_gradients_through_memory():
    m = build_model("memory_transformer", seed=0, vocab_size=5, d_model=16, n_heads=2, n_mem=2, segment_len=3)
    ids = torch.randint(0, 5, (2, 8), generator=torch.Generator().manual_seed(0))
    logits, mem = m(ids, return_memory=True)
    assert logits.shape == (2, 8, 5) and mem["memory"].shape == (4, 2, 2, 16)   # 3 segments + initial
    assert mem["residual"].shape == (3, 2, 8, 16)
    assert m.state_size(100) == 2 * 16
    # a loss on the last segment reaches the first segment's tokens only through memory
    x = m.embed(ids).detach().requires_grad_(True)
    m.embed.weight.data.zero_()
    out = m.head(m.ln_f(torch.cat([m._segment(m.mem_init.expand(2, -1, -1), x[:, :3], False)[0]], 1)))
    out.sum().backward()
    assert x.grad.abs().sum() > 0
    # positions restart each segment: the first segment's logits ignore later tokens
    assert torch.allclose(m(ids)[:, :3], m(ids[:, :3]), atol=1e-6)


def test_memory_transformer_memory_carries_information():
    m = build_model("memory_transformer", seed=0, vocab_size=5, d_model=16, n_heads=2, n_mem=2, segment_len=2)
    a, b = torch.tensor([[1, 2, 3, 3]]), torch.tensor([[4, 0, 3, 3]])
    assert not torch.allclose(m(a)[:, 2:], m(b)[:, 2:])   # same second segment, different memory


@pytest.mark.parametrize("model,knobs", [("lstm", {"hidden_size": 16}), ("gru", {"hidden_size": 16}),
                                         ("linear_attention", {"d_model": 16, "n_heads": 2, "n_layers": 1}),
                                         ("transformer", {"d_model": 16, "n_heads": 2, "n_layers": 1}),
                                         ("memory_transformer", {"d_model": 16, "n_heads": 2, "n_layers": 1,
                                                                 "segment_len": 4})])
def test_models_learn_a_trivial_task(model, knobs):
    # copy the current token's class: a one-step map every model learns in a few dozen steps
    cfg = MemoryRunConfig(task="max", task_knobs={"length": 6, "n_values": 4, "target": "every"}, model=model,
                          model_knobs=knobs, train=TrainConfig(steps=150, batch_size=32, lr=1e-2, eval_every=25),
                          target_acc=0.97, eval_size=128)
    r = train_on_task(cfg)
    assert r.eval[6]["acc"] >= 0.95, r.eval


@pytest.mark.parametrize("name,knobs", [("linear_attention", {}), ("memory_transformer", {"segment_len": 3})])
def test_memory_spec_names_returned_tensors(name, knobs):
    m = build_model(name, seed=0, vocab_size=4, d_model=8, n_heads=2, **knobs)
    _, mem = m(torch.zeros(2, 5, dtype=torch.long), return_memory=True)
    named = {n for role in m.memory_spec().values() for n in role if n != "parameters"}
    assert named == set(mem)
