"""Deferred energy work (``energy_buffer_mb``): the rows, their order and the gradient sums are those of
step-by-step work (``energy_buffer_mb=0``) bit for bit, whatever the number of buffered steps, and every
reader (``rows``, ``table()``, a checkpoint) sees the deferred steps."""

import pytest
import torch
import torch.nn.functional as F

from neumo.errors import NeumoError
from neumo.spectral.tracker import SpectralTracker
from neumo.spectral.tracker_metrics import CHUNK, FlatLayout


def _model(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(7, 33, dtype=dtype), torch.nn.Tanh(), torch.nn.Linear(33, 5, dtype=dtype))
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=dtype) * 0.3)
    return m


def _run(tracker, steps=23, dtype=torch.float32, peek=None):
    """Train with the tracker's four calls; ``peek``: steps after which ``rows`` is copied (a mid-run read)."""
    m = _model(dtype)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(40, 7, generator=g, dtype=dtype), torch.randint(0, 5, (40,), generator=g)
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    tracker.start(m)
    seen = {"accum": {n: torch.zeros_like(p) for n, p in tracker.params.items()}, "update": {}}
    for step in range(1, steps + 1):
        b = (x[step % 5 * 8 :][:8], y[step % 5 * 8 :][:8])
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(m(b[0]), b[1]).backward()
        for n, p in tracker.params.items():  # independent oracles: the step-by-step sums and energies
            seen["accum"][n] += p.grad
        tracker.observe_gradients(m, step, b, last=step == steps)
        opt.step()
        seen["update"][step] = {n: float((p.detach() - tracker.w0[n]).double().pow(2).sum())
                                for n, p in tracker.params.items()}
        tracker.observe_step(m, step, last=step == steps)
        if peek and step in peek:
            seen[step] = (list(tracker.rows), bytes(tracker.state_tensors()["state_json"].tolist()))
    return tracker, seen


def _slots(tracker):
    return tracker._k


SCHEDULES = [{}, {"energy": 2, "ranks": 5, "inequality": 7, "rich_lag": 3}, {"energy": 1, "ranks": 0, "inequality": 0}]


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_deferred_rows_equal_step_by_step_rows_bit_for_bit(schedule, dtype):
    ref, oracle = _run(SpectralTracker(schedule=schedule, energy_buffer_mb=0), dtype=dtype)
    assert _slots(ref) == 1
    for n in ref.params:
        assert torch.equal(ref.accum[n], oracle["accum"][n])
    shares = [r for r in ref.rows if r[4] == "update_share"]
    assert shares
    for _, step, n, _, _, v in shares:
        e = oracle["update"][step]
        assert v == pytest.approx(e[n] / sum(e.values()), rel=2 * (CHUNK + 2) * 2.0**-24)
    per_slot_mb = 2 * ref._flat.size * ref._plist[0].element_size() / 2**20
    for k in (2, 3, 64):
        tr, _ = _run(SpectralTracker(schedule=schedule, energy_buffer_mb=k * per_slot_mb * 1.0001), dtype=dtype)
        assert _slots(tr) == k
        assert tr.rows == ref.rows  # same rows, same order, same floats
        for n in ref.params:
            assert torch.equal(tr.accum[n], ref.accum[n])
        assert tr._grad_energy == ref._grad_energy


def test_every_reader_sees_the_deferred_steps():
    peek = (1, 4, 9, 10)
    ref, ref_seen = _run(SpectralTracker(energy_buffer_mb=0), peek=peek)
    ref_seen.pop("accum"), ref_seen.pop("update")
    tr, seen = _run(SpectralTracker(), peek=peek)
    seen.pop("accum"), seen.pop("update")
    assert _slots(tr) > max(peek)  # nothing would have been flushed by a full buffer
    assert seen == ref_seen  # rows and checkpointed state mid-window: those of step-by-step work
    assert all(any(r[1] == s and r[3] == "energy" for r in seen[s][0]) for s in peek)
    assert tr.table().equals(ref.table())


class TwoLayers(torch.nn.Module):
    """a(x) + scale * b(x); ``skip_every``: every so many calls b is left out (b gets no gradient)."""

    def __init__(self, scale=1.0, skip_every=0):
        super().__init__()
        self.a, self.b = torch.nn.Linear(6, 9), torch.nn.Linear(6, 9, bias=False)
        self.scale, self.skip_every, self.calls = scale, skip_every, 0

    def forward(self, x):
        self.calls += 1
        skip = self.skip_every and self.calls % self.skip_every == 0
        return self.a(x) + (0.0 if skip else self.scale * self.b(x))


def _sgd_run(mb, steps, **model_kw):
    """SGD steps of TwoLayers with the tracker's four calls; the float64 squared norm of b's gradient by step."""
    torch.manual_seed(0)  # test-only: the runs start from equal models
    m, tr = TwoLayers(**model_kw), SpectralTracker(energy_buffer_mb=mb)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    tr.start(m)
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(2))
    grads = {}
    for step in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        m(x).pow(2).mean().backward()
        if m.b.weight.grad is not None:
            grads[step] = float(m.b.weight.grad.double().pow(2).sum())
        tr.observe_gradients(m, step, (x,), last=step == steps)
        opt.step()
        tr.observe_step(m, step, last=step == steps)
    return tr, grads


def test_a_step_without_some_gradient_takes_the_per_tensor_path_between_deferred_steps():
    (ref, grads), (tr, _) = _sgd_run(0, 12, skip_every=3), _sgd_run(16, 12, skip_every=3)
    assert len(grads) == 8  # b had no gradient at steps 3, 6, 9 and 12
    assert _slots(tr) > 1 and tr.rows == ref.rows


@pytest.mark.parametrize("bad", [-1, float("inf"), float("nan"), True, "16"])
def test_energy_buffer_mb_is_validated(bad):
    with pytest.raises(NeumoError, match="energy_buffer_mb"):
        SpectralTracker(energy_buffer_mb=bad)


def test_padding_only_buffers_have_zero_padding():
    ts = [torch.randn(3, 5), torch.randn(70), torch.randn(2, 64)]
    lay = FlatLayout(ts)
    buf = lay.buffer(copies=3, zero=False).view(3, lay.size)
    for c in range(3):
        views = lay.views(buf[c])
        torch._foreach_copy_(views, ts)
        full = lay.buffer()
        torch._foreach_copy_(lay.views(full), ts)
        assert torch.equal(buf[c], full)  # padding zero, tensors in place
    vals = lay.squared_norms(buf.view(-1), [v for c in range(3) for v in lay.views(buf[c])])
    want = [float(t.double().pow(2).sum()) for t in ts] * 3
    assert vals == pytest.approx(want, rel=(CHUNK + 2) * 2.0**-24)


def test_deferred_energies_that_float32_would_underflow_come_from_float64_squares():
    """A layer whose gradients (and updates, under SGD) are ~1e-22: their float32 squares underflow, so
    the deferred path recomputes them in float64, like the step-by-step path and the direct oracle."""
    (ref, grads), (tr, _) = _sgd_run(0, 8, scale=1e-22), _sgd_run(16, 8, scale=1e-22)
    assert _slots(tr) > 1 and tr.rows == ref.rows
    assert 0 < grads[8] < 1e-40  # the float32 square of these entries would underflow
    assert tr._grad_energy["b.weight"] == pytest.approx(grads[8], rel=1e-12)
