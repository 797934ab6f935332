"""SpectralTracker: its rows equal direct computations; it never changes training."""

import pytest
import torch
import torch.nn.functional as F

from neumo.errors import NeumoError
from neumo.runs import Run
from neumo.spectral.curvature.params import flatten, unflatten
from neumo.spectral.inequality import gini, neuron_strengths, spearman
from neumo.spectral.ranks import matrix_ranks
from neumo.spectral.tracker import COLUMNS, SpectralTracker
from neumo.train import Trainer


def make(seed=0):
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    x = torch.randn(40, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)
    return model, x, y


def loss_fn(m, batch):
    x, y = batch
    return F.cross_entropy(m(x), y)


def batches(x, y, bs=4):
    return lambda step: (x[(step * bs) % 40: (step * bs) % 40 + bs], y[(step * bs) % 40: (step * bs) % 40 + bs])


def value(df, step, module, quantity, metric):
    sel = df[(df.step == step) & (df.module == module) & (df.quantity == quantity) & (df.metric == metric)]
    assert len(sel) == 1, (step, module, quantity, metric, len(sel))
    return float(sel.value.iloc[0])


def fit(tracker=None, steps=6, seed=0, run=None):
    model, x, y = make(seed)
    w0 = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    Trainer(model, opt, loss_fn, batches(x, y), steps, callbacks=[tracker] if tracker else [], run=run).fit()
    return model, w0, x, y


def test_rows_match_direct_computations(tmp_path):
    run = Run.create("tracker-test", {}, root=tmp_path)
    tr = SpectralTracker(schedule={"energy": 1, "ranks": 3, "inequality": 3, "rich_lag": 3}, shuffled_labels=True)
    model, w0, x, y = fit(tr, steps=6, run=run)
    df = run.read_table("spectral")
    assert list(df.columns) == COLUMNS and set(df.run) == {run.id}
    W, W0 = model[0].weight.detach(), w0[0]
    for k, v in matrix_ranks(W - W0).items():
        assert value(df, 6, "0.weight", "update", k) == pytest.approx(v, rel=1e-9)
        assert value(df, 0, "0.weight", "W", k) == pytest.approx(matrix_ranks(W0)[k], rel=1e-9)
        # plain SGD: the accumulated gradient is (W_0 - W_T) / lr, so its ranks are the update's
        assert value(df, 6, "0.weight", "grad_accum", k) == pytest.approx(v, rel=1e-6)
    # a gradient from 4 samples has rank <= 4: every rank over its bound min(4, 8, 5) is <= 1
    for k in ("energy_rank", "stable_rank", "entropy_rank", "participation_ratio"):
        for q in ("grad", "grad_shuffled"):
            r = value(df, 3, "0.weight", q, k + "_over_bound")
            assert 0 < r <= 1 + 1e-9
    assert value(df, 3, "0.weight", "grad", "energy_rank") <= 4
    # energy shares sum to one; effective number of modules lies in [1, 2]
    for name in ("update_share", "grad_share"):
        s = sum(value(df, 5, m, "energy", name) for m in ("0.weight", "2.weight"))
        assert s == pytest.approx(1.0)
    assert 1.0 <= value(df, 5, "*", "energy", "effective_modules_update") <= 2.0
    assert value(df, 6, "2.weight", "neurons_out", "gini") == pytest.approx(
        gini(neuron_strengths(model[2].weight)["out"]))
    assert value(df, 6, "2.weight", "entries", "gini") == pytest.approx(gini(model[2].weight.detach().abs()))
    assert {"W_random"} <= set(df.quantity)


def test_rich_get_richer_is_spearman_of_strength_and_growth():
    model, _, _ = make(1)
    tr = SpectralTracker(modules="0.*", schedule={"energy": 0, "ranks": 0, "inequality": 0, "rich_lag": 2})
    tr.start(model)
    s0 = neuron_strengths(model[0].weight)
    with torch.no_grad():
        model[0].weight.mul_(1 + 0.1 * torch.arange(8, dtype=torch.float64)[:, None])
    tr.observe_step(model, 1)
    tr.observe_step(model, 2)
    s2 = neuron_strengths(model[0].weight)
    df = tr.table()
    for side in ("out", "in"):
        assert value(df, 2, "0.weight", f"neurons_{side}", "rich_get_richer") == pytest.approx(
            spearman(s0[side], s2[side] - s0[side]))
    assert not (df.step == 1).any()  # rich_lag=2: nothing is recorded at step 1


def test_hessian_rows_match_dense_hessian_at_the_step_parameters():
    model, x, y = make(2)
    tr = SpectralTracker(schedule={"hessian": 1, "ranks": 0, "inequality": 0, "rich_lag": 0}, hessian_k=3,
                         hessian_batch=(x, y), loss_fn=loss_fn)
    params = [p.detach().clone() for p in model.parameters()]
    names = [n for n, _ in model.named_parameters()]

    def f(theta):
        return loss_fn(lambda inp: torch.func.functional_call(model, dict(zip(names, unflatten(theta, params))),
                                                              (inp,)), (x, y))

    H = torch.autograd.functional.hessian(f, flatten(params))
    lam = torch.linalg.eigvalsh(H).flip(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    Trainer(model, opt, loss_fn, batches(x, y), 1, callbacks=[tr]).fit()
    df = tr.table()
    for i in range(3):
        assert value(df, 1, "*", "hessian", f"eigenvalue_{i + 1}") == pytest.approx(float(lam[i]), rel=1e-4)
    V = torch.linalg.eigh(H).eigenvectors[:, -3:]
    g = torch.func.grad(f)(flatten(params))
    frac = float(((V.T @ g) ** 2).sum() / (g @ g))
    assert value(df, 1, "*", "hessian", "grad_fraction_topk") == pytest.approx(frac, rel=1e-3)
    assert value(df, 1, "*", "hessian", "chance_fraction") == pytest.approx(3 / H.shape[0])


def test_tracker_does_not_change_training():
    plain, *_ = fit(None, steps=5)
    tr = SpectralTracker(schedule={"energy": 1, "ranks": 1, "inequality": 1, "rich_lag": 1, "hessian": 2},
                         shuffled_labels=True, hessian_k=2)
    tracked, *_ = fit(tr, steps=5)
    for a, b in zip(plain.parameters(), tracked.parameters()):
        assert torch.equal(a, b)


def test_bad_selection_and_missing_loss_are_one_line_errors():
    model, x, y = make()
    with pytest.raises(NeumoError, match="no >=2-D trainable weight"):
        SpectralTracker(modules="nothing").start(model)
    with pytest.raises(NeumoError, match="hessian=0"):
        tr = SpectralTracker(schedule={"hessian": 1})
        tr.start(model)
        tr.observe_gradients(model, 1, batch=None)
    with pytest.raises(Exception, match="greater than or equal"):
        SpectralTracker(schedule={"ranks": -1})


def test_plots_draw_every_module_and_refuse_unknown_metrics():
    from neumo.spectral.plots import metric_vs_step, module_heatmap

    tr = SpectralTracker(schedule={"ranks": 2, "inequality": 0, "rich_lag": 0})
    fit(tr, steps=4)
    df = tr.table()
    fig, ax = metric_vs_step(df, "update", "stable_rank")
    assert len(ax.get_lines()) == 2
    fig, ax = module_heatmap(df, "energy", "update_share")
    assert ax.images[0].get_array().shape == (2, 4)
    with pytest.raises(NeumoError, match="no rows for"):
        metric_vs_step(df, "update", "nonsense")


def test_tracker_state_is_checkpointed_and_a_resumed_fit_gives_the_same_table(tmp_path):
    """Killed after a checkpoint, a fresh tracker resumed from it ends with the uninterrupted table."""
    from neumo.train import Callback

    sched = {"ranks": 2, "energy": 3, "inequality": 4, "rich_lag": 5}

    class Crash(Callback):
        def on_step_end(self, trainer, state):
            if state.step == 13:
                raise KeyboardInterrupt

    def trainer(run, cbs):
        model, x, y = make(0)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        return Trainer(model, opt, loss_fn, batches(x, y), 20, callbacks=cbs, run=run, checkpoint_every=5)

    ref = SpectralTracker(schedule=sched)
    trainer(Run.create("ref", {}, root=tmp_path), [ref]).fit()
    run = Run.create("killed", {}, root=tmp_path)
    first = SpectralTracker(schedule=sched)
    with pytest.raises(KeyboardInterrupt):
        trainer(run, [first, Crash()]).fit()
    assert first.table().step.max() == 12                # rows past the step-10 checkpoint die with it
    resumed = SpectralTracker(schedule=sched)
    trainer(run, [resumed]).fit(resume=True)
    got, want = resumed.table().drop(columns="run"), ref.table().drop(columns="run")
    assert len(got) == len(want) and (got.values == want.values).all()


def test_resuming_with_other_tracked_modules_is_refused(tmp_path):
    run = Run.create("r", {}, root=tmp_path)
    model, x, y = make(0)
    Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), loss_fn, batches(x, y), 5,
            callbacks=[SpectralTracker(modules="0.weight")], run=run, checkpoint_every=5).fit()
    model, x, y = make(0)
    t = Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), loss_fn, batches(x, y), 10,
                callbacks=[SpectralTracker(modules="2.weight")], run=run, checkpoint_every=5)
    with pytest.raises(NeumoError, match="same tracker settings"):
        t.fit(resume=True)
