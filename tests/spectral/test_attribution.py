"""Ablation and activation patching against a hand-written forward pass of neumo's Transformer."""

import math

import pytest
import torch

from neumo.errors import NeumoError
from neumo.nn import build_model
from neumo.spectral.attribution import ablation_effects, components, patching_effects, record

V = 11


def _model(seed=0):
    return build_model("transformer", seed=seed, vocab_size=V, d_model=16, n_layers=2, n_heads=4, max_len=16,
                       pos="learned").double().eval()


def _ids(seed, n=6, T=9):
    return torch.randint(0, V, (n, T), generator=torch.Generator().manual_seed(seed))


def _loss(logits, ids):  # next-token loss: a metric that depends on every position
    return float(torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1)))


def _manual_forward(m, ids, replace=None):
    """The Transformer's forward written out, with ``replace = {component: activation}`` substituted."""
    with torch.no_grad():
        return _forward(m, ids, replace or {})


def _forward(m, ids, replace):
    B, T = ids.shape
    x = m.embed(ids) + m.pos_embed(torch.arange(T))
    for i, blk in enumerate(m.blocks):
        a = blk.attn
        h_in = blk.ln1(x)
        D, H = h_in.shape[-1], a.n_heads
        hs = D // H
        q, k, v = a.qkv(h_in).split(D, dim=2)
        heads = []
        for h in range(H):
            sl = slice(h * hs, (h + 1) * hs)
            s = q[..., sl] @ k[..., sl].transpose(-2, -1) / math.sqrt(hs)
            s = s.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf")).softmax(-1)
            heads.append(replace.get(f"L{i}.H{h}", s @ v[..., sl]))
        x = x + a.proj(torch.cat(heads, dim=-1))
        x = x + replace.get(f"L{i}.mlp", blk.mlp(blk.ln2(x)))
    return m.head(m.ln_f(x))


def test_components_and_unknown_names():
    m = _model()
    assert components(m) == ["L0.H0", "L0.H1", "L0.H2", "L0.H3", "L0.mlp", "L1.H0", "L1.H1", "L1.H2", "L1.H3",
                             "L1.mlp"]
    with pytest.raises(NeumoError, match="unknown component 'L5.H0'"):
        record(m, _ids(0), ["L5.H0"])
    with pytest.raises(NeumoError, match="unknown component 'L0.H4'"):
        record(m, _ids(0), ["L0.H4"])
    with pytest.raises(NeumoError, match="'mode' parameter"):
        ablation_effects(m, _ids(0), _loss, mode="resample")
    with pytest.raises(NeumoError, match="transformer"):
        components(build_model("mlp", seed=0, in_dim=3, out_dim=2, hidden=[4]))


def test_manual_forward_is_the_model():
    m, ids = _model(), _ids(1)
    assert torch.allclose(_manual_forward(m, ids), m(ids), atol=1e-12)


def test_zero_and_mean_ablation_match_the_hand_forward():
    m, ids, ref = _model(), _ids(2), _ids(3, n=20)
    acts = record(m, ref)
    zero, mean = ablation_effects(m, ids, _loss, mode="zero"), ablation_effects(m, ids, _loss, reference=ref)
    base = _loss(m(ids), ids)
    full = record(m, ids)
    for n in components(m):
        want_zero = _loss(_manual_forward(m, ids, {n: torch.zeros_like(full[n])}), ids) - base
        want_mean = _loss(_manual_forward(m, ids, {n: acts[n].mean(dim=(0, 1)).expand_as(full[n])}), ids) - base
        assert zero[n] == pytest.approx(want_zero, abs=1e-10) and mean[n] == pytest.approx(want_mean, abs=1e-10)
    assert any(abs(v) > 1e-3 for v in zero.values())          # the check can tell components apart


def test_an_unused_component_has_no_effect():
    m, ids = _model(), _ids(4)
    with torch.no_grad():
        hs = 4
        m.blocks[1].attn.proj.weight[:, 2 * hs:3 * hs] = 0     # head L1.H2 reaches nothing
        m.blocks[0].mlp[2].weight.zero_()
        m.blocks[0].mlp[2].bias.zero_()                       # L0.mlp outputs zero
    eff = ablation_effects(m, ids, _loss, mode="zero")
    assert eff["L1.H2"] == 0.0 and eff["L0.mlp"] == 0.0 and abs(eff["L0.H1"]) > 0
    patched = patching_effects(m, ids, _ids(5), _loss)
    assert patched["L1.H2"]["effect"] == 0.0 and patched["L0.mlp"]["effect"] == 0.0


def test_patching_matches_the_hand_forward_and_identity_is_zero():
    m, clean, corrupt = _model(), _ids(6), _ids(7)
    got = patching_effects(m, clean, corrupt, _loss)
    acts = record(m, clean)
    m_clean, m_corrupt = _loss(m(clean), clean), _loss(m(corrupt), clean)
    for n in components(m):
        eff = _loss(_manual_forward(m, corrupt, {n: acts[n]}), clean) - m_corrupt
        assert got[n]["effect"] == pytest.approx(eff, abs=1e-10)
        assert got[n]["restored"] == pytest.approx(eff / (m_clean - m_corrupt), abs=1e-9)
    same = patching_effects(m, clean, clean, _loss)
    assert all(v["effect"] == 0.0 and math.isnan(v["restored"]) for v in same.values())
    with pytest.raises(NeumoError, match="same shape"):
        patching_effects(m, clean, corrupt[:, :5], _loss)


def test_the_model_is_left_as_it_was():
    m, ids = _model(), _ids(8)
    m.train()
    ablation_effects(m, ids, _loss)
    patching_effects(m, ids, _ids(9), _loss)
    assert m.training and not any(h for b in m.blocks for h in (b.mlp._forward_hooks, b.attn.proj._forward_pre_hooks))
    m.eval()
    assert torch.allclose(m(ids), _manual_forward(m, ids), atol=1e-12)
