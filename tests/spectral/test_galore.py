"""GaLore against torch.optim.Adam (oracle), its projector protocol and its measured state bytes."""

import pytest
import torch
from torch import nn

from neumo.errors import NeumoError
from neumo.nn import build_model
from neumo.spectral.galore import GaLore, adam_state_bytes, optimizer_state_bytes

D = torch.float64


def _grads(shape, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g, dtype=D) for _ in range(steps)]


def _axis_aligned(m, n):
    """A gradient whose singular vectors are coordinate axes (distinct singular values 5, 4, 3, ...)."""
    G = torch.zeros(m, n, dtype=D)
    for i in range(min(m, n)):
        G[i, i] = (5.0 - i) * (-1) ** i
    return G


def _run(opt_cls, params, grads, **kw):
    opt = opt_cls(params, **kw)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()
    return opt


@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
@pytest.mark.parametrize("shape", [(4, 6), (6, 4), (5, 5)])
def test_full_rank_galore_equals_adam_when_the_projector_is_a_signed_permutation(shape, dtype, atol):
    m, n = shape
    w0 = torch.randn(m, n, generator=torch.Generator().manual_seed(1), dtype=D)
    b0 = torch.randn(m, generator=torch.Generator().manual_seed(2), dtype=D)
    grads = [(_axis_aligned(m, n), torch.ones(m, dtype=D))] + list(zip(_grads((m, n), 5), _grads((m,), 5, seed=3)))
    grads = [tuple(g.to(dtype) for g in gs) for gs in grads]
    kw = dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6)
    pg = [w0.to(dtype).clone().requires_grad_(), b0.to(dtype).clone().requires_grad_()]
    pa = [w0.to(dtype).clone().requires_grad_(), b0.to(dtype).clone().requires_grad_()]
    galore = _run(GaLore, pg, grads, rank=min(m, n), update_every=100, scale=1.0, **kw)
    _run(torch.optim.Adam, pa, grads, **kw)
    P = galore.state[pg[0]]["projector"]
    torch.testing.assert_close(P.abs(), torch.eye(min(m, n), dtype=dtype), rtol=0, atol=atol)
    for a, b in zip(pg, pa):                       # the weight (projected) and the bias (plain Adam)
        torch.testing.assert_close(a, b, rtol=0, atol=atol)
    assert (pg[0] - w0.to(dtype)).abs().max() > 1e-2   # the runs did move


def test_full_rank_galore_is_not_adam_for_a_generic_rotation():
    """Documented caveat: Adam's second moment is elementwise in the rotated basis."""
    w0 = torch.zeros(4, 6, dtype=D)
    grads = [(g,) for g in _grads((4, 6), 4)]
    pg, pa = [w0.clone().requires_grad_()], [w0.clone().requires_grad_()]
    _run(GaLore, pg, grads, lr=0.01, rank=4, update_every=100, scale=1.0)
    _run(torch.optim.Adam, pa, grads, lr=0.01)
    assert (pg[0] - pa[0]).abs().max() > 1e-3


@pytest.mark.parametrize("shape,rank", [((5, 8), 2), ((8, 5), 3), ((6, 6), 6)])
def test_fixed_projector_galore_is_adam_on_projected_coordinates(shape, rank):
    """W_t = W_0 + P Z_t (or Z_t Q^T) with Z from torch Adam on the projected gradients, lr * scale."""
    m, n = shape
    w0 = torch.randn(m, n, generator=torch.Generator().manual_seed(4), dtype=D)
    grads = [(g,) for g in _grads(shape, 6, seed=5)]
    p = [w0.clone().requires_grad_()]
    galore = _run(GaLore, p, grads, lr=0.02, rank=rank, update_every=1000, scale=0.25, eps=1e-7)
    P = galore.state[p[0]]["projector"]
    left = m <= n
    assert P.shape == ((m, rank) if left else (n, rank))
    U, _, Vh = torch.linalg.svd(grads[0][0])       # the projector is the top-r subspace of the first gradient
    top = U[:, :rank] if left else Vh[:rank].T
    torch.testing.assert_close(P @ P.T, top @ top.T, rtol=0, atol=1e-10)
    z = torch.zeros((rank, n) if left else (m, rank), dtype=D, requires_grad=True)
    adam = torch.optim.Adam([z], lr=0.02 * 0.25, eps=1e-7)
    for (g,) in grads:
        z.grad = P.T @ g if left else g @ P
        adam.step()
    expected = w0 + (P @ z if left else z @ P.T)
    torch.testing.assert_close(p[0], expected.detach(), rtol=0, atol=1e-12)
    assert galore.state[p[0]]["exp_avg"].shape == z.shape


def test_projector_is_refreshed_every_T_steps_from_the_current_gradient():
    m, n, r, T = 4, 7, 2, 3
    grads = _grads((m, n), 8, seed=6)
    w = torch.zeros(m, n, dtype=D, requires_grad=True)
    opt = GaLore([w], lr=0.01, rank=r, update_every=T)
    seen = []
    for t, g in enumerate(grads):
        w.grad = g.clone()
        opt.step()
        P = opt.state[w]["projector"]
        seen.append(P.clone())
        U = torch.linalg.svd(g)[0][:, :r]
        refresh = t % T == 0
        assert torch.allclose(P @ P.T, U @ U.T, atol=1e-10) == refresh, t
        if not refresh:
            assert torch.equal(P, seen[t - 1])


def test_state_bytes_are_measured_and_smaller_than_adam():
    model = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 96))
    x = torch.randn(16, 128, generator=torch.Generator().manual_seed(0))
    galore = GaLore(model.parameters(), lr=1e-3, rank=4)
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)
    for opt in (galore, adam):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    by_hand = sum(t.numel() * t.element_size() for st in galore.state.values() for t in st.values()
                  if torch.is_tensor(t))
    assert galore.state_bytes() == by_hand
    # closed form, float32 (4 bytes): W1 (64, 128) left: P 64x4 + 2 moments 4x128; W2 (96, 64) right:
    # Q 64x4 + 2 moments 96x4; biases 2 x (64 + 96); one 4-byte step per parameter
    assert by_hand == 4 * (64 * 4 + 2 * 4 * 128 + 64 * 4 + 2 * 96 * 4 + 2 * (64 + 96) + 4)
    n_params = sum(p.numel() for p in model.parameters())
    assert adam_state_bytes(adam) == 4 * 2 * n_params + 4 * 4
    assert galore.state_bytes() < adam_state_bytes(adam) / 5
    assert optimizer_state_bytes(torch.optim.SGD(model.parameters(), lr=0.1)) == 0


def test_galore_trains_a_transformer_and_plain_groups_use_adam():
    model = build_model("transformer", seed=0, vocab_size=13, d_model=16, n_layers=1, n_heads=2, max_len=8)
    mats = [p for p in model.parameters() if p.dim() == 2]
    rest = [p for p in model.parameters() if p.dim() != 2]
    opt = GaLore([{"params": mats}, {"params": rest, "rank": None}], lr=3e-3, rank=4, update_every=10)
    ids = torch.randint(0, 13, (8, 8), generator=torch.Generator().manual_seed(0))
    losses = []
    for _ in range(30):
        opt.zero_grad()
        logits = model(ids[:, :-1])
        loss = nn.functional.cross_entropy(logits.reshape(-1, 13), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.1
    assert all("projector" in opt.state[p] for p in mats) and not any("projector" in opt.state[p] for p in rest)


def test_weight_decay_is_decoupled_like_adamw():
    p1 = [torch.ones(5, dtype=D, requires_grad=True)]
    p2 = [torch.ones(5, dtype=D, requires_grad=True)]
    grads = [(g,) for g in _grads((5,), 3)]
    _run(GaLore, p1, grads, lr=0.1, weight_decay=0.3)
    _run(torch.optim.AdamW, p2, grads, lr=0.1, weight_decay=0.3)
    torch.testing.assert_close(p1[0], p2[0], rtol=0, atol=1e-12)


def test_options_are_validated_with_their_names():
    w = [torch.zeros(3, 3, requires_grad=True)]
    with pytest.raises(NeumoError, match="'rank'.*Got 0"):
        GaLore(w, rank=0)
    with pytest.raises(NeumoError, match="'update_every'"):
        GaLore(w, update_every=0)
    with pytest.raises(NeumoError, match="'scale'"):
        GaLore(w, scale=0)
    with pytest.raises(NeumoError, match="'betas'"):
        GaLore(w, betas=(0.9, 1.0))
    with pytest.raises(NeumoError, match="'rank'"):
        GaLore([{"params": w, "rank": 1.5}])


# ---------------------------------------------------------------- the random-projection null


def _galore_steps(projection, seed=0, steps=5, update_every=2):
    w = torch.randn(6, 9, generator=torch.Generator().manual_seed(4), dtype=D).requires_grad_()
    opt = GaLore([w], lr=0.01, rank=3, update_every=update_every, projection=projection, seed=seed)
    projectors = []
    for g in _grads((6, 9), steps):
        w.grad = g.clone()
        opt.step()
        projectors.append(opt.state[w]["projector"].clone())
    return w, opt, projectors


def test_random_projection_is_orthonormal_refreshed_on_schedule_and_seeded():
    w, opt, ps = _galore_steps("random")
    for P in ps:
        assert P.shape == (6, 3)
        torch.testing.assert_close(P.T @ P, torch.eye(3, dtype=D), rtol=0, atol=1e-12)
    assert torch.equal(ps[0], ps[1]) and not torch.equal(ps[1], ps[2]) and torch.equal(ps[2], ps[3])
    _, _, again = _galore_steps("random")
    _, _, other = _galore_steps("random", seed=1)
    assert all(torch.equal(a, b) for a, b in zip(ps, again)) and not torch.equal(ps[0], other[0])
    # the same memory as the SVD projection, and a different subspace than the gradient's top-3
    _, svd, qs = _galore_steps("svd")
    assert opt.state_bytes() == svd.state_bytes()
    assert float(torch.linalg.svdvals(ps[0].T @ qs[0]).min()) < 0.99


def test_random_projection_with_a_fixed_projector_is_adam_in_its_coordinates():
    # P fixed (one refresh): W moves only inside span(P), like the SVD projector
    w, opt, ps = _galore_steps("random", steps=4, update_every=100)
    w0 = torch.randn(6, 9, generator=torch.Generator().manual_seed(4), dtype=D)
    P = ps[0]
    dw = (w.detach() - w0)
    torch.testing.assert_close(P @ (P.T @ dw), dw, rtol=0, atol=1e-12)


def test_unknown_projection_is_refused():
    with pytest.raises(NeumoError, match="projection"):
        GaLore([torch.zeros(2, 2, requires_grad=True)], projection="sketch")
