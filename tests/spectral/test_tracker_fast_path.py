"""The tracker's fused per-step path and batched record path give the rows of the straightforward per-module
computation: same rows in the same order, values equal to float64 rounding (relative 1e-12), except the
energy rows of float32 weights, whose squared norms are row sums of float32 squares (FlatLayout): within
relative 2 (CHUNK + 2) 2^-24 = 7.9e-6 for a share and twice that for the effective number of modules."""

import math

import pytest
import torch
import torch.nn.functional as F

from neumo.spectral.inequality import gini, inequality_metrics, neuron_strengths, spearman, top_share
from neumo.spectral.ranks import energy_rank, entropy_rank, participation_ratio, spectrum_ranks, stable_rank
from neumo.seeding import make_generator
from neumo.spectral.tracker import SpectralTracker
from neumo.spectral.tracker_metrics import (CHUNK, FlatLayout, energy_shares, squared_norms, gradient_rank_bound,
                                            inequality_rows, n_samples_of, rank_metrics)
from neumo.train import Trainer


class ReferenceTracker(SpectralTracker):
    """The per-module loops the tracker used before its per-step and record paths were fused (kept verbatim)."""

    def start(self, model):
        self.params = self._select(model)
        self.w0 = {n: p.detach().clone() for n, p in self.params.items()}
        self.accum = {n: torch.zeros_like(p, memory_format=torch.contiguous_format) for n, p in self.params.items()}
        self.snapshot = {n: neuron_strengths(p) for n, p in self.params.items()}
        self._grad_energy = {}
        self._bind()
        for i, (n, p) in enumerate(self.params.items()):
            g = make_generator(self.seed, "tracker-random", i)
            rand = torch.randn(p.shape, generator=g, dtype=torch.float64)
            self._add(0, n, "W", rank_metrics(p, self.eps))
            self._add(0, n, "W_random", rank_metrics(rand, self.eps))
            for (q, m), v in inequality_rows(p).items():
                self._add(0, n, q, {m: v})

    def observe_gradients(self, model, step, batch=None, loss_fn=None, last=False):
        sch, loss_fn = self.schedule, loss_fn or self.loss_fn
        n_samples = self.batch_size or (n_samples_of(batch) if batch is not None else None)
        want_ranks, want_energy = sch.due("ranks", step, last), sch.due("energy", step, last)
        for n, p in self.params.items():
            if p.grad is None:
                continue
            self.accum[n].add_(p.grad.detach())
            if want_energy:
                self._grad_energy[n] = float(p.grad.detach().double().pow(2).sum())
            if want_ranks:
                bound = gradient_rank_bound(p.shape, n_samples)
                self._add(step, n, "grad", rank_metrics(p.grad, self.eps, bound))
                self._add(step, n, "grad_accum", rank_metrics(self.accum[n], self.eps, bound))

    def observe_step(self, model, step, last=False):
        sch = self.schedule
        if sch.due("energy", step, last):
            upd = {n: float((p.detach() - self.w0[n]).double().pow(2).sum()) for n, p in self.params.items()}
            for name, energies in (("update", upd), ("grad", self._grad_energy)):
                if not energies:
                    continue
                shares, eff = energy_shares(energies)
                for n, s in shares.items():
                    self._add(step, n, "energy", {f"{name}_share": s})
                self._add(step, "*", "energy", {f"effective_modules_{name}": eff})
        for n, p in self.params.items():
            if sch.due("ranks", step, last):
                self._add(step, n, "W", rank_metrics(p, self.eps))
                self._add(step, n, "update", rank_metrics(p.detach() - self.w0[n], self.eps))
            if sch.due("inequality", step, last):
                for (q, m), v in inequality_rows(p).items():
                    self._add(step, n, q, {m: v})
            if sch.rich_lag and step % sch.rich_lag == 0:
                now = neuron_strengths(p)
                for side in ("out", "in"):
                    growth = now[side] - self.snapshot[n][side]
                    self._add(step, n, f"neurons_{side}", {"rich_get_richer": spearman(self.snapshot[n][side], growth)})
                self.snapshot[n] = now
        self.last_step = step


class Net(torch.nn.Module):
    """Two layers in use and one (``unused``) that never gets a gradient after step 2."""

    def __init__(self, dtype):
        super().__init__()
        self.a, self.b, self.unused = (torch.nn.Linear(7, 33, dtype=dtype), torch.nn.Linear(33, 4, dtype=dtype),
                                       torch.nn.Linear(7, 4, bias=False, dtype=dtype))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        out = self.b(torch.tanh(self.a(x)))
        return out + self.unused(x) if self.calls <= 2 else out


def fit(tracker_cls, dtype, schedule):
    torch.manual_seed(0)  # test-only: initialises the nn.Linear layers identically for both trackers
    model = Net(dtype)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 7, generator=g, dtype=dtype), torch.randint(0, 4, (64,), generator=g)
    tr = tracker_cls(schedule=schedule)
    Trainer(model, torch.optim.Adam(model.parameters(), lr=0.05),
            lambda m, b: F.cross_entropy(m(b[0]), b[1]), lambda s: (x[s % 8 * 8:][:8], y[s % 8 * 8:][:8]), 12,
            callbacks=[tr]).fit()
    return tr


U32 = 2.0**-24
ENERGY_REL = {torch.float32: 2 * (CHUNK + 2) * U32, torch.float64: 1e-12}  # share; effective modules: twice


def assert_rows_close(got, want, rel=1e-12, energy_rel=1e-12):
    assert len(got) == len(want)
    worst = 0.0
    for g, w in zip(got, want):
        tol = rel if g[3] != "energy" else energy_rel * (2 if g[2] == "*" else 1)
        assert g[:5] == w[:5] and math.isclose(g[5], w[5], rel_tol=tol, abs_tol=1e-300), (g, w)
        if g[3] == "energy":
            worst = max(worst, abs(g[5] - w[5]) / abs(w[5]))
    return worst


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("schedule", [{}, {"energy": 2, "ranks": 3, "inequality": 4, "rich_lag": 5}])
def test_fused_path_rows_equal_the_per_module_reference(dtype, schedule):
    tr, ref = fit(SpectralTracker, dtype, schedule), fit(ReferenceTracker, dtype, schedule)
    assert tr._flat is not None  # the flat path ran (and the per-tensor one once "unused" lost its gradient)
    got, want = tr.rows, ref.rows
    worst = assert_rows_close(got, want, energy_rel=ENERGY_REL[dtype])
    assert worst < (1e-6 if dtype == torch.float32 else 1e-13)  # in practice far inside the bound
    # the gradient sums are bit for bit the reference's (same float adds), W_0 too
    for n in ref.params:
        assert torch.equal(tr.accum[n], ref.accum[n]) and torch.equal(tr.w0[n], ref.w0[n])
    assert any(r[2] == "unused.weight" and r[3] == "energy" and r[1] > 2 for r in got)
    # discrete metrics are exactly equal (the energy rank is an index)
    assert [r for r in got if r[4] == "energy_rank"] == [r for r in want if r[4] == "energy_rank"]


def test_squared_norms_equal_the_per_tensor_formula_and_never_touch_inputs():
    g = torch.Generator().manual_seed(0)
    ts = [torch.randn(s, generator=g) for s in [(300, 200), (5,), (3, 4, 5), (70000,)]]
    ts += [torch.randn(40, 30, generator=g, dtype=torch.float64), torch.randn(9, 9, generator=g).T]
    before = [t.clone() for t in ts]
    want = [float(t.double().pow(2).sum()) for t in ts]
    got = squared_norms(ts)
    assert len(got) == len(want) and all(math.isclose(a, b, rel_tol=1e-13) for a, b in zip(got, want))
    assert all(torch.equal(a, b) for a, b in zip(ts, before))
    assert squared_norms([]) == []


def test_one_sort_inequality_and_one_normalisation_ranks_equal_each_function():
    g = torch.Generator().manual_seed(3)
    for x in [torch.rand(1000, generator=g), torch.rand(7, generator=g), torch.zeros(5), torch.ones(10),
              torch.randint(0, 3, (50,), generator=g).double()]:
        m = inequality_metrics(x)
        assert m == {"gini": gini(x), "top1_share": top_share(x, 0.01), "top10_share": top_share(x, 0.10)}
        for eps in (0.0, 0.01, 0.3):
            assert spectrum_ranks(x, eps) == {"energy_rank": energy_rank(x, eps), "stable_rank": stable_rank(x),
                                              "entropy_rank": entropy_rank(x),
                                              "participation_ratio": participation_ratio(x)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_flat_layout_squared_norms_are_within_their_bound_of_the_float64_squares(dtype):
    g = torch.Generator().manual_seed(5)
    ts = [torch.randn(s, generator=g, dtype=dtype) for s in [(33, 7), (64, 64), (3, 3, 5), (1, 70000), (257, 3)]]
    ts[1] = ts[1] * torch.logspace(-8, 8, 64, dtype=dtype)  # magnitudes over 16 decades within one tensor
    ts += [torch.zeros(5, 13, dtype=dtype), torch.full((9, 9), 1e-30, dtype=dtype),  # squares underflow float32
           torch.full((4, 4), 3e25, dtype=dtype), torch.randn(40, 30, generator=g, dtype=dtype).T]  # overflow
    lay = FlatLayout(ts)
    buf = lay.buffer()
    views = lay.views(buf)
    torch._foreach_copy_(views, ts)
    got, want = lay.squared_norms(buf, views), [float(t.double().pow(2).sum()) for t in ts]
    bound = (CHUNK + 2) * U32 if dtype == torch.float32 else 1e-13
    assert len(got) == len(want) and want[6] > 0 and math.isfinite(want[7])
    for a, b in zip(got, want):
        assert math.isclose(a, b, rel_tol=bound, abs_tol=0.0), (a, b)
    assert got[5] == 0.0
    assert torch.equal(buf[lay.offsets[0] + 33 * 7 : lay.offsets[1]], torch.zeros(lay.offsets[1] - 231, dtype=dtype))
