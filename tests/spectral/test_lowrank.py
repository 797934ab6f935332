"""LoRA / PiSSA / MiLoRA, apply_lora, ReLoRA and the factorised layer against closed forms and SVDs."""

import numpy as np
import pytest
import torch
from torch import nn

from neumo.errors import NeumoError
from neumo.nn import build_model
from neumo.spectral.factorized import FactorizedLinear, cayley_retraction, qr_positive
from neumo.spectral.finetune import shared_subspace, task_updates
from neumo.spectral.lowrank import (LoRALinear, ReLoRA, apply_lora, lora_modules, lora_parameters, merge_lora,
                                    relora_lr_multiplier, unmerge_lora)


def linear64(out_f=7, in_f=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(in_f, out_f, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(out_f, in_f, generator=g, dtype=torch.float64))
        lin.bias.copy_(torch.randn(out_f, generator=g, dtype=torch.float64))
    return lin


def x64(n=11, d=5, seed=1):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ------------------------------------------------------------------------------------------ LoRALinear

def test_lora_init_output_equals_base_and_adapter_is_trainable():
    lin = linear64()
    x = x64()
    ref = lin(x).detach().clone()
    lora = LoRALinear(lin, rank=2, init="lora", seed=3)
    assert torch.equal(lora.lora_B, torch.zeros(7, 2, dtype=torch.float64))
    assert lora.lora_A.abs().max() > 0 and lora.lora_A.abs().max() <= 1 / 5 ** 0.5
    torch.testing.assert_close(lora(x), ref, rtol=0, atol=0)
    assert [n for n, p in lora.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]
    # deterministic per seed, different across seeds
    assert torch.equal(LoRALinear(linear64(), 2, seed=3).lora_A, lora.lora_A)
    assert not torch.equal(LoRALinear(linear64(), 2, seed=4).lora_A, lora.lora_A)


@pytest.mark.parametrize("init", ["lora", "pissa", "milora"])
def test_merged_equals_unmerged_outputs(init):
    lin = linear64()
    lora = LoRALinear(lin, rank=3, alpha=6.0, init=init, seed=0)
    with torch.no_grad():                           # a non-zero adapter, as after training
        lora.lora_B.add_(torch.randn(7, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64))
    x = x64()
    w0 = lin.weight.detach().clone()
    y = lora(x).detach()
    lora.merge()
    assert lora.merged
    torch.testing.assert_close(lora(x), y, rtol=0, atol=1e-12)
    torch.testing.assert_close(lin.weight, w0 + 2.0 * lora.lora_B @ lora.lora_A, rtol=0, atol=1e-12)
    lora.merge()                                    # idempotent
    torch.testing.assert_close(lora(x), y, rtol=0, atol=1e-12)
    lora.unmerge()
    torch.testing.assert_close(lin.weight, w0, rtol=0, atol=1e-12)
    torch.testing.assert_close(lora(x), y, rtol=0, atol=1e-12)


@pytest.mark.parametrize("alpha", [None, 1.0, 16.0])
def test_pissa_residual_plus_adapter_is_w_and_uses_top_triplets(alpha):
    lin = linear64(8, 6)
    W = lin.weight.detach().clone()
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    lora = LoRALinear(lin, rank=2, alpha=alpha, init="pissa")
    torch.testing.assert_close(lin.weight + lora.delta_weight(), W, rtol=0, atol=1e-12)
    torch.testing.assert_close(lora.delta_weight(), (U[:, :2] * S[:2]) @ Vh[:2], rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.svdvals(lin.weight)[:4], S[2:], rtol=0, atol=1e-12)  # residual keeps the rest
    assert torch.linalg.svdvals(lin.weight)[4:].max() < 1e-12
    x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(lora(x), x @ W.T + lin.bias, rtol=0, atol=1e-12)


def test_milora_uses_bottom_singular_triplets():
    lin = linear64(8, 6)
    W = lin.weight.detach().clone()
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    lora = LoRALinear(lin, rank=2, init="milora")
    bottom = (U[:, 4:] * S[4:]) @ Vh[4:]
    torch.testing.assert_close(lora.delta_weight(), bottom, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.svdvals(lora.delta_weight())[:2], S[4:], rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.svdvals(lin.weight)[:4], S[:4], rtol=0, atol=1e-12)
    torch.testing.assert_close(lin.weight + lora.delta_weight(), W, rtol=0, atol=1e-12)
    # the top construction is a different adapter: the check above can fail
    assert (LoRALinear(linear64(8, 6), 2, init="pissa").delta_weight() - bottom).norm() > 1


def test_arguments_are_validated_with_the_option_named():
    with pytest.raises(NeumoError, match=r"'rank'.*\[1, 5\].*Got 6"):
        LoRALinear(linear64(), rank=6)
    with pytest.raises(NeumoError, match="'rank'"):
        LoRALinear(linear64(), rank=0)
    with pytest.raises(NeumoError, match="'init' parameter must be one of 'lora', 'pissa', 'milora'. Got 'dora'"):
        LoRALinear(linear64(), rank=2, init="dora")
    with pytest.raises(NeumoError, match="'alpha'"):
        LoRALinear(linear64(), rank=2, alpha=0)
    with pytest.raises(NeumoError, match="'rank'"):
        FactorizedLinear(4, 3, rank=4)


# ------------------------------------------------------------------------------------------ apply_lora

@pytest.mark.parametrize("init", ["lora", "pissa", "milora"])
def test_apply_lora_on_mlp_keeps_outputs_and_freezes_the_rest(init):
    model = build_model("mlp", seed=0, in_dim=6, out_dim=3, hidden=(8, 8)).double()
    x = x64(9, 6)
    ref = model(x).detach().clone()
    names = apply_lora(model, rank=2, init=init, seed=1)
    assert names == ["net.0", "net.2", "net.4"]
    torch.testing.assert_close(model(x), ref, rtol=0, atol=1e-12)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == [f"net.{i}.lora_{ab}" for i in (0, 2, 4) for ab in "AB"]
    assert [id(p) for p in lora_parameters(model)] == [id(p) for n, p in model.named_parameters() if p.requires_grad]


def test_apply_lora_on_transformer_targets_and_outputs():
    model = build_model("transformer", seed=0, vocab_size=11, d_model=16, n_layers=2, n_heads=2, max_len=8)
    ids = torch.randint(0, 11, (3, 8), generator=torch.Generator().manual_seed(0))
    ref = model(ids).detach().clone()
    names = apply_lora(model, rank=4, init="pissa", targets=["blocks.*.attn.qkv", "blocks.*.mlp.*"], seed=0)
    assert names == ["blocks.0.attn.qkv", "blocks.0.mlp.0", "blocks.0.mlp.2",
                     "blocks.1.attn.qkv", "blocks.1.mlp.0", "blocks.1.mlp.2"]
    torch.testing.assert_close(model(ids), ref, rtol=1e-5, atol=1e-5)
    assert all("lora_" in n for n, p in model.named_parameters() if p.requires_grad)
    assert sum(p.requires_grad for p in model.parameters()) == 12
    # a second call wraps what is left, never an adapter's inner base
    rest = apply_lora(model, rank=2, seed=0)
    assert "head" in rest and not any(n.endswith(".base") for n in rest)
    torch.testing.assert_close(model(ids), ref, rtol=1e-5, atol=1e-5)
    # gradients reach only the adapters
    model(ids).sum().backward()
    assert all(p.grad is None for n, p in model.named_parameters() if "lora_" not in n)


def test_apply_lora_refuses_empty_selections_and_tied_weights():
    model = build_model("mlp", seed=0, in_dim=4, out_dim=2, hidden=(3,))
    with pytest.raises(NeumoError, match="selected no nn.Linear.*'net.0', 'net.2'"):
        apply_lora(model, rank=1, targets="blocks.*")
    with pytest.raises(NeumoError, match=r"'rank'.*'net.2'"):
        apply_lora(model, rank=3)
    assert not lora_modules(model) and all(p.requires_grad for p in model.parameters())  # untouched
    tied = build_model("transformer", seed=0, vocab_size=7, d_model=8, n_layers=1, n_heads=2, max_len=4,
                       tie_embeddings=True)
    with pytest.raises(NeumoError, match="'head' is shared with 'embed'"):
        apply_lora(tied, rank=2)
    with pytest.raises(NeumoError, match="'init'"):
        apply_lora(model, rank=1, init="qlora")


# ------------------------------------------------------------------------------------------ ReLoRA

def _regression(seed=0, n=64, d_in=6, d_out=5):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d_in, generator=g, dtype=torch.float64)
    T = torch.randn(d_out, d_in, generator=g, dtype=torch.float64)   # full-rank target map
    return X, X @ T.T


def _train(model, steps, relora_every=None, lr=0.05):
    X, Y = _regression()
    opt = torch.optim.Adam(lora_parameters(model), lr=lr)
    sched = ReLoRA(model, opt, every=relora_every, seed=0, restart_warmup=2) if relora_every else None
    for _ in range(steps):
        opt.zero_grad()
        ((model(X) - Y) ** 2).mean().backward()
        opt.step()
        if sched:
            sched.step()
    return sched


def _effective_weight(lora: LoRALinear) -> torch.Tensor:
    return lora.base.weight if lora.merged else lora.base.weight + lora.delta_weight()


def test_relora_restart_preserves_function_resets_state_and_draws_new_a():
    model = nn.Sequential(linear64(5, 6))
    apply_lora(model, rank=1, seed=0)
    X, _ = _regression()
    sched = _train(model, steps=3, relora_every=1000)
    lora = model[0]
    opt = sched.optimizer
    assert opt.state[lora.lora_A]["exp_avg"].abs().sum() > 0
    a_before, y_before = lora.lora_A.detach().clone(), model(X).detach().clone()
    sched.restart()
    torch.testing.assert_close(model(X), y_before, rtol=0, atol=1e-12)
    assert torch.equal(lora.lora_B, torch.zeros_like(lora.lora_B))
    assert not torch.allclose(lora.lora_A, a_before)
    for p in (lora.lora_A, lora.lora_B):
        assert opt.state[p]["exp_avg"].abs().sum() == 0 and opt.state[p]["exp_avg_sq"].abs().sum() == 0
        assert float(opt.state[p]["step"]) == 3           # step counters are kept
    a1 = lora.lora_A.detach().clone()
    sched.restart()                                       # a new stream per restart
    assert not torch.allclose(lora.lora_A, a1)


def test_relora_accumulated_update_exceeds_rank_r_and_plain_lora_does_not():
    def delta_svals(every):
        model = nn.Sequential(linear64(5, 6))
        w0 = model[0].weight.detach().clone()
        apply_lora(model, rank=1, seed=0)
        _train(model, steps=40, relora_every=every)
        return torch.linalg.svdvals(_effective_weight(model[0]).detach() - w0)

    s_relora = delta_svals(every=10)                      # 40 steps: 4 cycles, a restart after each
    s_plain = delta_svals(every=None)
    assert s_plain[1] / s_plain[0] < 1e-12                # plain LoRA: rank(dW) <= r = 1
    assert s_relora[1] / s_relora[0] > 1e-3               # ReLoRA: rank(dW) > r
    assert int((s_relora / s_relora[0] > 1e-6).sum()) == 4  # one rank-1 piece per cycle, 4 cycles


def test_relora_prune_keeps_the_largest_entries():
    model = nn.Sequential(linear64(5, 6))
    apply_lora(model, rank=2, seed=0)
    opt = torch.optim.Adam(lora_parameters(model), lr=0.01)
    sched = ReLoRA(model, opt, every=100, reset="prune", prune_ratio=0.7)
    X, Y = _regression()
    ((model(X) - Y) ** 2).mean().backward()
    opt.step()
    m = opt.state[model[0].lora_B]["exp_avg"]            # B's gradient is non-zero at B = 0 (A's is zero)
    before = m.clone()
    sched.restart()
    kept = m != 0
    assert int(kept.sum()) == 3                           # 30% of 10 entries
    assert before.abs()[kept].min() >= before.abs()[~kept].max()
    torch.testing.assert_close(m[kept], before[kept], rtol=0, atol=0)
    v = opt.state[model[0].lora_B]["exp_avg_sq"]          # pruned with m's mask: every kept m keeps its v
    assert torch.equal(v != 0, kept)


def test_relora_prune_trains_through_several_restarts_without_diverging():
    # with m and v pruned separately, entries whose m survived but whose v was zeroed stepped by ~m / eps
    # after each restart, and this run reached a loss of 5e11
    g = torch.Generator().manual_seed(0)
    X = torch.randn(256, 48, generator=g, dtype=torch.float64)
    Y = X @ (torch.randn(24, 48, generator=g, dtype=torch.float64) / 48**0.5).T
    lin = nn.Linear(48, 24, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(24, 48, generator=g, dtype=torch.float64) * 0.1)
        lin.bias.zero_()
    model = nn.Sequential(lin)
    apply_lora(model, rank=4, seed=0)
    opt = torch.optim.Adam(lora_parameters(model), lr=0.02)
    sched = ReLoRA(model, opt, every=20, seed=0, reset="prune", prune_ratio=0.99, restart_warmup=5)
    losses = []
    for _ in range(120):                                  # 6 cycles, 5 restarts with pruned moments
        opt.zero_grad()
        loss = ((model(X) - Y) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    assert sched.restarts == 6 and np.isfinite(losses).all()
    assert max(losses) <= losses[0] and losses[-1] < 0.1 * losses[0]


def test_relora_lr_schedule_warms_up_after_each_restart():
    assert [relora_lr_multiplier(s, every=4, restart_warmup=2) for s in range(1, 11)] == \
        [1, 1, 1, 1, 0.5, 1, 1, 1, 0.5, 1]
    assert relora_lr_multiplier(6, 4, 0, schedule=lambda s: 0.1 * s) == pytest.approx(0.6)
    model = nn.Sequential(linear64(5, 6))
    apply_lora(model, rank=1)
    opt = torch.optim.SGD(lora_parameters(model), lr=0.2)
    sched = ReLoRA(model, opt, every=2, restart_warmup=4)
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        sched.step()
    assert seen == pytest.approx([0.2, 0.2, 0.05, 0.1, 0.05, 0.1])
    assert sched.restarts == 3
    with pytest.raises(NeumoError, match="no LoRALinear"):
        ReLoRA(nn.Sequential(nn.Linear(2, 2)), opt, every=2)
    with pytest.raises(NeumoError, match="'reset'"):
        ReLoRA(model, opt, every=2, reset="drop")
    with pytest.raises(NeumoError, match="'every'"):
        ReLoRA(model, opt, every=0)


def test_merge_helpers_apply_to_every_adapter():
    model = build_model("mlp", seed=0, in_dim=4, out_dim=2, hidden=(3,)).double()
    apply_lora(model, rank=1, init="pissa")
    x = x64(5, 4)
    y = model(x).detach()
    merge_lora(model)
    assert all(m.merged for m in lora_modules(model).values())
    torch.testing.assert_close(model(x), y, rtol=0, atol=1e-12)
    unmerge_lora(model)
    assert not any(m.merged for m in lora_modules(model).values())


# ------------------------------------------------------------------------------------------ factorised

def _perturbed(core=False, seed=0):
    layer = FactorizedLinear(9, 7, rank=3, core=core, seed=seed, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed + 10)
    with torch.no_grad():
        layer.A.add_(0.3 * torch.randn(7, 3, generator=g, dtype=torch.float64))
        layer.B.add_(0.3 * torch.randn(3, 9, generator=g, dtype=torch.float64))
        if core:
            layer.S.add_(0.3 * torch.randn(3, 3, generator=g, dtype=torch.float64))
    return layer


def _stiefel_errors(layer):
    eye = torch.eye(layer.rank, dtype=torch.float64)
    A, B = layer.A.detach(), layer.B.detach()
    return float((A.T @ A - eye).abs().max()), float((B @ B.T - eye).abs().max())


def test_orthogonality_penalty_zero_on_stiefel_and_matches_hand_computation():
    layer = FactorizedLinear(5, 4, rank=2, seed=0, dtype=torch.float64)
    assert float(layer.orthogonality_penalty().detach()) < 1e-28
    with torch.no_grad():
        layer.A.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0], [0.0, 0.0]]))   # A^T A = diag(1, 4)
        layer.B.copy_(torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]]))  # B B^T = diag(2, 1)
    assert float(layer.orthogonality_penalty().detach()) == pytest.approx(9.0 + 1.0)
    layer.orthogonality_penalty().backward()            # differentiable: d/dA = 4 A (A^T A - I)
    torch.testing.assert_close(layer.A.grad, 4 * layer.A.detach() @ torch.diag(torch.tensor([0.0, 3.0],
                                                                                           dtype=torch.float64)))


def test_qr_retraction_puts_factors_on_stiefel_and_changes_w_without_core():
    layer = _perturbed(core=False)
    x = x64(4, 9)
    y = layer(x).detach()
    assert max(_stiefel_errors(layer)) > 1e-2
    change = layer.retract("qr")
    assert max(_stiefel_errors(layer)) < 1e-10
    assert float(layer.orthogonality_penalty().detach()) < 1e-20
    assert change > 1e-2 and (layer(x) - y).abs().max() > 1e-3   # W = A B alone cannot keep the product
    s = torch.linalg.svdvals(layer.weight)
    torch.testing.assert_close(s[:3], torch.ones(3, dtype=torch.float64))
    assert s[3:].max() < 1e-12


def test_qr_retraction_with_core_absorbs_triangular_factors_and_keeps_the_function():
    layer = _perturbed(core=True)
    W, x = layer.weight.detach().clone(), x64(4, 9)
    y = layer(x).detach()
    change = layer.retract("qr")
    assert max(_stiefel_errors(layer)) < 1e-10
    assert change < 1e-12
    torch.testing.assert_close(layer.weight, W, rtol=0, atol=1e-12)
    torch.testing.assert_close(layer(x), y, rtol=0, atol=1e-12)
    Q, R = qr_positive(torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    assert (torch.diagonal(R) > 0).all() and torch.allclose(Q.T @ Q, torch.eye(3, dtype=torch.float64))


def test_cayley_retraction_stays_on_stiefel_and_is_first_order_in_the_step():
    layer = _perturbed(core=False)
    with pytest.raises(NeumoError, match="Cayley"):
        _no_anchor = FactorizedLinear(9, 7, rank=3, dtype=torch.float64)
        _no_anchor.anchor_A = None
        _no_anchor.retract("cayley")
    layer.retract("cayley")                             # from the anchor left by the initialisation
    assert max(_stiefel_errors(layer)) < 1e-10
    # first order: Y = X + P_X(V) + O(|V|^2), P_X(V) = V - X sym(X^T V)
    g = torch.Generator().manual_seed(3)
    X = qr_positive(torch.randn(7, 3, generator=g, dtype=torch.float64))[0]
    V = torch.randn(7, 3, generator=g, dtype=torch.float64)
    tangent = V - X @ (0.5 * (X.T @ V + V.T @ X))
    errs = []
    for t in (1e-2, 1e-3):
        Y = cayley_retraction(X, t * V)
        assert (Y.T @ Y - torch.eye(3, dtype=torch.float64)).abs().max() < 1e-12
        errs.append(float((Y - X - t * tangent).norm()))
    assert errs[1] < errs[0] / 50                        # quadratic, not linear, remainder
    with pytest.raises(NeumoError, match="'method'"):
        layer.retract("polar")


def test_factorized_from_linear_is_the_truncated_svd():
    lin = linear64(7, 9)
    W = lin.weight.detach()
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    best = (U[:, :3] * S[:3]) @ Vh[:3]
    for core in (False, True):
        f = FactorizedLinear.from_linear(lin, rank=3, core=core)
        torch.testing.assert_close(f.weight, best, rtol=0, atol=1e-12)
        x = x64(2, 9)
        torch.testing.assert_close(f(x), x @ best.T + lin.bias, rtol=0, atol=1e-12)
    assert max(_stiefel_errors(FactorizedLinear.from_linear(lin, 3, core=True))) < 1e-12
    # Eckart-Young via numpy: no rank-3 matrix is closer to W
    assert np.linalg.norm(W.numpy() - best.numpy()) == pytest.approx(float(S[3:].norm()))


# ------------------------------------------------------------------------------------------ base-model workflow

def test_shared_subspace_recovers_a_planted_subspace_and_a_random_one_does_not():
    g = torch.Generator().manual_seed(0)
    Q = torch.linalg.qr(torch.randn(60, 3, generator=g, dtype=torch.float64)).Q
    updates = torch.randn(20, 3, generator=g, dtype=torch.float64) @ Q.T \
        + 1e-3 * torch.randn(20, 60, generator=g, dtype=torch.float64)
    res = shared_subspace(updates.reshape(20, 6, 10), k=3, reference=Q)
    assert res.basis.shape == (60, 3)
    assert float(res.angles.max()) < 0.01
    assert res.n_components <= 3 and float(res.scree.sum()) == pytest.approx(1.0)
    assert float(res.scree[:3].sum()) > 0.999
    rand = torch.linalg.qr(torch.randn(60, 3, generator=g, dtype=torch.float64)).Q
    assert float(shared_subspace(updates, k=3, reference=rand).angles.min()) > 0.5   # the null is far
    other = shared_subspace(updates[10:], k=3)                                      # halves agree
    assert float(shared_subspace(updates[:10], k=3, reference=other).angles.max()) < 0.01
    with pytest.raises(NeumoError, match="'k'.*\\[1, 20\\]"):
        shared_subspace(updates, k=21)


def test_principal_angles_match_scipy():
    from scipy.linalg import subspace_angles

    g = torch.Generator().manual_seed(1)
    A = torch.randn(12, 3, generator=g, dtype=torch.float64)
    B = torch.randn(12, 4, generator=g, dtype=torch.float64)
    res = shared_subspace(A.T, k=3, reference=B)      # the rows of A.T span span(A)
    expected = np.sort(subspace_angles(A.numpy(), B.numpy()))
    np.testing.assert_allclose(res.angles.numpy(), expected, rtol=0, atol=1e-10)


def _tasks(n_tasks=3, seed=0):
    """Linear regression tasks whose targets are W_base + a dW from a planted 2-D subspace of matrices."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(128, 5, generator=g, dtype=torch.float64)
    basis = torch.linalg.qr(torch.randn(4 * 5, 2, generator=g, dtype=torch.float64)).Q   # (20, 2)
    coefs = torch.randn(n_tasks, 2, generator=g, dtype=torch.float64)
    return X, basis, coefs


def test_task_updates_full_and_lora_on_a_planted_family():
    X, basis, coefs = _tasks()
    base = nn.Linear(5, 4, bias=False, dtype=torch.float64)
    with torch.no_grad():
        base.weight.copy_(torch.randn(4, 5, generator=torch.Generator().manual_seed(9), dtype=torch.float64))
    model_fn = lambda: nn.Sequential(nn.Linear(5, 4, bias=False, dtype=torch.float64))   # noqa: E731
    base_state = {"0.weight": base.weight.detach().clone()}
    frozen = base_state["0.weight"].clone()
    targets = [frozen + (basis @ c).reshape(4, 5) for c in coefs]
    batch_fns = [lambda step, T=T: (X, X @ T.T) for T in targets]
    loss = lambda model, b: ((model(b[0]) - b[1]) ** 2).mean()          # noqa: E731
    full = task_updates(model_fn, base_state, batch_fns, loss, steps=400, lr=0.02)
    assert list(full) == ["0"] and full["0"].shape == (3, 20)
    torch.testing.assert_close(base_state["0.weight"], frozen, rtol=0, atol=0)    # base untouched
    torch.testing.assert_close(full["0"], coefs @ basis.T, rtol=0, atol=2e-2)    # converged to the planted dW
    res = shared_subspace(full["0"], k=2, reference=basis)
    assert float(res.angles.max()) < 0.05 and res.n_components <= 2
    lora = task_updates(model_fn, base_state, batch_fns, loss, steps=50, lr=0.02, mode="lora", rank=1)
    for row in lora["0"]:
        s = torch.linalg.svdvals(row.reshape(4, 5))
        assert s[0] > 1e-3 and s[1] < 1e-12 * s[0] + 1e-14                # each LoRA update has rank <= 1
    with pytest.raises(NeumoError, match="'mode'"):
        task_updates(model_fn, base_state, batch_fns, loss, steps=1, mode="half")


def test_docs_examples_run():
    """Every python block of docs/spectral.md's "Low-rank methods" section runs as written."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "spectral.md").read_text(encoding="utf-8")
    section = text[text.index("## Low-rank methods"):]
    section = section[:section.find("\n## ", 3)] if "\n## " in section[3:] else section
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 5
    for block in blocks:
        exec(compile(block, "docs/spectral.md", "exec"), {})


def test_relora_runs_as_a_trainer_callback_and_checkpoints_its_counters(tmp_path):
    from neumo.train import Trainer
    from neumo.train.checkpoint import load_checkpoint, save_checkpoint

    X, Y = _regression()
    model = nn.Sequential(linear64(5, 6))
    apply_lora(model, rank=1, seed=0)
    opt = torch.optim.Adam(lora_parameters(model), lr=0.05)
    relora = ReLoRA(model, opt, every=2, restart_warmup=2)
    loss = lambda m, b: ((m(b[0]) - b[1]) ** 2).mean()            # noqa: E731
    Trainer(model, opt, loss, lambda step: (X, Y), steps=6, callbacks=[relora], progress=False).fit()
    assert (relora.steps, relora.restarts) == (6, 3)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.025)      # step 7 is the first after a restart
    path = save_checkpoint(tmp_path / "c.safetensors", model, opt, 6, callbacks=[relora])
    fresh_opt = torch.optim.Adam(lora_parameters(model), lr=0.05)
    fresh = ReLoRA(model, fresh_opt, every=2, restart_warmup=2)
    assert fresh_opt.param_groups[0]["lr"] == pytest.approx(0.05)
    load_checkpoint(path, model, fresh_opt, callbacks=[fresh])
    assert (fresh.steps, fresh.restarts) == (6, 3)
    assert fresh_opt.param_groups[0]["lr"] == pytest.approx(0.025)
    again = ReLoRA(model, opt, every=2)                            # the base lr is the group's initial_lr
    assert again.base_lrs == [0.05]
