"""The batched record-step measurements equal the per-module functions (SVD, spearman, inequality oracles)."""

import math

import numpy as np
import pytest
import scipy.stats
import torch

from neumo.spectral.inequality import neuron_strengths, spearman
from neumo.spectral.ranks import spectrum_ranks
from neumo.spectral.tracker_batch import (batch_inequality, batch_rank_metrics, batch_rich, batch_spearman,
                                          batch_spectrum_ranks, spectra_of)
from neumo.spectral.tracker_metrics import inequality_rows, rank_metrics


def close(a: dict, b: dict, rel=1e-12):
    assert list(a) == list(b)
    for k in a:
        assert math.isclose(a[k], b[k], rel_tol=rel, abs_tol=1e-300), (k, a[k], b[k])


def matrices():
    g = torch.Generator().manual_seed(0)
    out = [torch.randn(s, generator=g) for s in [(30, 12), (30, 12), (12, 30), (7, 7), (5,), (3, 4, 2)]]
    low = torch.randn(40, 3, generator=g, dtype=torch.float64) @ torch.randn(3, 20, generator=g, dtype=torch.float64)
    zero_rows = torch.randn(30, 12, generator=g)
    zero_rows[::3] = 0
    sums_to_zero = torch.randn(4, 33, generator=g, dtype=torch.float64)
    sums_to_zero -= sums_to_zero.mean(0)  # rank 3: like a cross-entropy gradient of the logit layer
    graded = torch.linalg.qr(torch.randn(20, 20, generator=g, dtype=torch.float64))[0] @ torch.diag(
        torch.logspace(0, -9, 20, dtype=torch.float64))
    return out + [low, zero_rows, sums_to_zero, graded, torch.zeros(6, 4)]


def test_spectra_equal_float64_svdvals_including_ill_conditioned_and_rank_deficient():
    for m, s in zip(matrices(), spectra_of(matrices())):
        want = torch.linalg.svdvals(m.reshape(m.shape[0], -1).double() if m.dim() > 1 else m.double()[None])
        assert s.dtype == torch.float64 and s.shape == want.shape
        torch.testing.assert_close(s, want, rtol=1e-10, atol=1e-13 * float(want.max().clamp(min=1e-300)))


@pytest.mark.parametrize("eps", [0.0, 0.01, 0.3])
def test_batched_ranks_equal_the_per_module_ranks(eps):
    ms = matrices()
    bounds = [0, 3, 5, 0, 1, 2, 3, 4, 3, 9, 2]
    for got, m, b in zip(batch_rank_metrics(ms, eps, bounds), ms, bounds):
        close(got, rank_metrics(m, eps, b), rel=1e-9)
    g = torch.Generator().manual_seed(1)
    S = torch.rand(6, 9, generator=g, dtype=torch.float64)
    S[2] = 0
    S[3, 4:] = 0
    for got, row in zip(batch_spectrum_ranks(S, eps), S):
        close(got, spectrum_ranks(row, eps))


def test_batched_inequality_equals_inequality_rows_in_the_same_order():
    ms = [m for m in matrices() if m.dim() == 2] + [torch.randn(3, 4, 2)]
    for got, m in zip(batch_inequality(ms), ms):
        close(got, inequality_rows(m))


def test_batched_spearman_equals_spearman_and_scipy_with_ties():
    g = torch.Generator().manual_seed(2)
    a = torch.rand(5, 40, generator=g, dtype=torch.float64)
    b = torch.rand(5, 40, generator=g, dtype=torch.float64)
    b[1, :10] = 0.0            # ties (rows of never-used tokens do not grow)
    a[2] = torch.round(a[2] * 4)
    b[3] = 1.0                 # constant: correlation 0
    got = batch_spearman(a, b)
    for i in range(5):
        assert math.isclose(got[i], spearman(a[i], b[i]), rel_tol=1e-12, abs_tol=1e-15)
        if i != 3:
            assert math.isclose(got[i], scipy.stats.spearmanr(a[i].numpy(), b[i].numpy())[0], rel_tol=1e-10)
    assert got[3] == 0.0


def test_batch_rich_is_spearman_of_strength_and_growth_per_side():
    g = torch.Generator().manual_seed(3)
    ws = [torch.randn(8, 5, generator=g) for _ in range(3)] + [torch.randn(5, 8, generator=g)]
    new = [w + 0.1 * torch.randn(w.shape, generator=g) for w in ws]
    snaps, now = [neuron_strengths(w) for w in ws], [neuron_strengths(w) for w in new]
    for r, s, n in zip(batch_rich(snaps, now), snaps, now):
        assert r == pytest.approx({side: spearman(s[side], n[side] - s[side]) for side in ("out", "in")}, rel=1e-12)
    assert np.isfinite([v for r in batch_rich(snaps, snaps) for v in r.values()]).all()


def test_energy_shares_equal_inverse_herfindahl():
    from neumo.spectral.inequality import inverse_herfindahl
    from neumo.spectral.tracker_metrics import energy_shares

    e = {"a": 3.0, "b": 1e-9, "c": 0.5, "d": 12.25}
    shares, eff = energy_shares(e)
    assert shares == pytest.approx({k: v / sum(e.values()) for k, v in e.items()}, rel=1e-15)
    assert math.isclose(eff, inverse_herfindahl(list(e.values())), rel_tol=1e-14)
    assert energy_shares({"a": 0.0, "b": 0.0}) == ({"a": 0.0, "b": 0.0}, 0.0)
