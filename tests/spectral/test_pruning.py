import pytest
import torch

from neumo.errors import NeumoError
from neumo.nn import build_model
from neumo.spectral.pruning import (MaskCallback, apply_masks_, imp, layer_sparsity, magnitude_masks,
                                    mask_gradients, prunable, random_mask, reinit, rewind_, snapshot, sparsity)
from neumo.train import Trainer

WEIGHTS = ["net.0.weight", "net.2.weight", "net.4.weight"]


def _mlp(seed=0, **kw):
    return build_model("mlp", seed=seed, in_dim=6, out_dim=3, hidden=[20, 16], **kw)


def _data():
    g = torch.Generator().manual_seed(4)
    return torch.randn(64, 6, generator=g), torch.randint(0, 3, (64,), generator=g)


def _train(steps=5, opt="sgd"):
    x, y = _data()

    def train_fn(model):
        if opt == "sgd":
            o = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
        else:
            o = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
        for _ in range(steps):
            o.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            o.step()

    return train_fn


def _expected_kept(n, rate, rounds):
    for _ in range(rounds):
        n -= round(rate * n)
    return n


def test_prunable_defaults_to_linear_weights():
    assert [n for n, _ in prunable(_mlp())] == WEIGHTS
    assert [n for n, _ in prunable(_mlp(), "*bias")] == ["net.0.bias", "net.2.bias", "net.4.bias"]
    with pytest.raises(NeumoError, match="no parameter to prune matches"):
        prunable(_mlp(), "nothing*")


@pytest.mark.parametrize("scope", ["global", "layerwise"])
def test_magnitude_masks_have_the_requested_sparsity_and_drop_the_smallest(scope):
    m = _mlp()
    total = sum(p.numel() for _, p in prunable(m))
    masks = None
    for r in range(1, 4):
        masks = magnitude_masks(m, 0.2, masks, scope=scope)
        if scope == "global":
            assert sum(int(v.sum()) for v in masks.values()) == _expected_kept(total, 0.2, r)
        else:
            for n, p in prunable(m):
                assert int(masks[n].sum()) == _expected_kept(p.numel(), 0.2, r)
    assert sparsity(masks) == pytest.approx(1 - 0.8 ** 3, abs=3 / total)
    params = dict(m.named_parameters())
    groups = [WEIGHTS] if scope == "global" else [[n] for n in WEIGHTS]
    for names in groups:                           # every kept |w| >= every pruned |w| within a group
        kept = torch.cat([params[n].detach().abs()[masks[n]] for n in names])
        pruned = torch.cat([params[n].detach().abs()[~masks[n]] for n in names])
        assert kept.min() >= pruned.max()


def test_masks_refuse_bad_input():
    m = _mlp()
    with pytest.raises(NeumoError, match=r"'rate' parameter must be a number in \[0, 1\)"):
        magnitude_masks(m, 1.0)
    with pytest.raises(NeumoError, match="'scope' parameter must be one of"):
        magnitude_masks(m, 0.5, scope="local")
    with pytest.raises(NeumoError, match="names no parameter"):
        apply_masks_(m, {"net.9.weight": torch.ones(3)})
    with pytest.raises(NeumoError, match="has shape"):
        apply_masks_(m, {"net.0.weight": torch.ones(3, dtype=torch.bool)})
    with pytest.raises(NeumoError, match="'rounds' parameter must be an integer >= 1"):
        imp(m, _train(), rounds=0, rate=0.2)


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_masked_weights_stay_zero_through_training_with_masked_gradients(opt):
    m = _mlp()
    masks = magnitude_masks(m, 0.5)
    apply_masks_(m, masks)
    handles = mask_gradients(m, masks)
    _train(10, opt)(m)
    params = dict(m.named_parameters())
    for n in WEIGHTS:
        assert torch.all(params[n][~masks[n]] == 0)
        assert torch.all(params[n][masks[n]] != 0)
    for h in handles:
        h.remove()
    _train(3, opt)(m)                                 # the control: without the hooks they move
    assert any(bool((params[n][~masks[n]] != 0).any()) for n in WEIGHTS)


def test_mask_callback_keeps_masks_in_a_trainer_fit():
    m = _mlp()
    masks = magnitude_masks(m, 0.7, scope="layerwise")
    x, y = _data()
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    opt.zero_grad()
    torch.nn.functional.cross_entropy(m(x), y).backward()
    opt.step()                                       # optimizer state already non-zero at masked entries
    Trainer(m, opt, lambda model, b: torch.nn.functional.cross_entropy(model(b[0]), b[1]), lambda s: (x, y),
            steps=4, callbacks=[MaskCallback(masks)]).fit()
    params = dict(m.named_parameters())
    for n in WEIGHTS:
        assert torch.all(params[n][~masks[n]] == 0)


def test_imp_rewinds_to_the_saved_weights_exactly():
    m = _mlp()
    _train(3)(m)                                      # rewind point: after k = 3 steps
    saved = snapshot(m)
    res = imp(m, _train(5), rounds=3, rate=0.3)
    total = sum(p.numel() for _, p in prunable(m))
    assert [round(s * total) for s in res.sparsity] == [total - _expected_kept(total, 0.3, r) for r in (1, 2, 3)]
    for k, v in m.state_dict().items():
        if k in res.masks:
            assert torch.equal(v, saved[k] * res.masks[k])
        else:
            assert torch.equal(v, saved[k])           # biases: rewound, never pruned
    for a, b in zip(res.history, res.history[1:]):   # masks only ever remove weights
        assert all(torch.all(b[n] <= a[n]) for n in a)
    # the masks came from trained weights, not from the rewind point (training moved the ranking)
    assert any(not torch.equal(res.history[0][n], magnitude_masks(_mlp_from(saved), 0.3)[n]) for n in WEIGHTS)


def _mlp_from(state):
    m = _mlp()
    m.load_state_dict(state)
    return m


def test_rewind_restores_a_snapshot_after_training():
    m = _mlp()
    s = snapshot(m)
    _train(3)(m)
    assert not torch.equal(m.net[0].weight, s["net.0.weight"])
    rewind_(m, s)
    assert all(torch.equal(v, s[k]) for k, v in m.state_dict().items())


def test_random_mask_has_the_same_per_layer_sparsity():
    masks = magnitude_masks(_mlp(), 0.6, scope="global")
    rnd = random_mask(masks, generator=3)
    assert layer_sparsity(rnd) == layer_sparsity(masks)
    assert any(not torch.equal(rnd[n], masks[n]) for n in masks)
    assert all(torch.equal(rnd[n], random_mask(masks, generator=3)[n]) for n in masks)   # seeded
    assert not all(torch.equal(rnd[n], random_mask(masks, generator=4)[n]) for n in masks)
    fixed = random_mask(masks, sparsity=0.25, generator=torch.Generator().manual_seed(0))
    assert all(int((~fixed[n]).sum()) == round(0.25 * fixed[n].numel()) for n in fixed)
    with pytest.raises(ValueError, match="explicit seed"):
        random_mask(masks)


def test_reinit_keeps_the_mask_and_draws_a_fresh_initialisation():
    m = _mlp(seed=0)
    masks = magnitude_masks(m, 0.5)
    r = reinit(m, masks, seed=9)
    fresh = dict(_mlp(seed=9).named_parameters())
    params = dict(r.named_parameters())
    for n, p in params.items():
        mask = masks.get(n, torch.ones_like(p, dtype=torch.bool))
        assert torch.equal(p, fresh[n] * mask)
    assert not torch.equal(params["net.0.weight"], dict(m.named_parameters())["net.0.weight"] * masks["net.0.weight"])
    assert torch.equal(m.net[0].weight, _mlp(seed=0).net[0].weight)   # the original is untouched


def test_imp_layerwise_prunes_each_tensor_by_the_rate():
    m = _mlp()
    res = imp(m, _train(2), rounds=2, rate=0.5, scope="layerwise")
    for n, p in prunable(m):
        assert int(res.masks[n].sum()) == _expected_kept(p.numel(), 0.5, 2)
        assert res.layer_sparsity[-1][n] == pytest.approx(1 - _expected_kept(p.numel(), 0.5, 2) / p.numel())
