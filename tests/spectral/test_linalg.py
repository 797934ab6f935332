"""Singular values by every method, and the no-SVD shortcuts, against exact SVDs."""

import pytest
import torch

from neumo.errors import NeumoError
from neumo.spectral import linalg
from neumo.spectral.linalg import singular_values, weight_matrix
from neumo.spectral.ranks import energy_rank, participation_ratio, stable_rank
from neumo.spectral.shortcuts import energy_rank_fast, participation_ratio_fast, stable_rank_fast


def planted(m=300, n=200, seed=0, decay=0.9):
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(m, n, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    s = 10 * decay ** torch.arange(n, dtype=torch.float64)
    return U @ torch.diag(s) @ V.T, s


@pytest.mark.parametrize("method", ["exact", "randomized", "lanczos", "auto"])
def test_top_k_matches_planted_spectrum(method):
    A, s = planted()
    res = singular_values(A, k=8, method=method)
    assert torch.allclose(res.values, s[:8], rtol=1e-6)
    assert res.method == ("exact" if method == "auto" else method)  # 200 <= 512: auto picks exact


def decaying(m=600, n=700, seed=1):
    """sigma_i = i^-1 for 40 values plus a 1% Gaussian floor: a trained-weight-like spectrum."""
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(m, 40, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, 40, generator=g, dtype=torch.float64))
    s = 1.0 / torch.arange(1, 41, dtype=torch.float64)
    return U @ torch.diag(s) @ V.T + 0.01 * torch.randn(m, n, generator=g, dtype=torch.float64) / n ** 0.5


def test_auto_picks_lanczos_for_a_few_values_of_a_large_matrix_with_a_decaying_spectrum():
    A = decaying()
    res = singular_values(A, k=5)
    assert res.method == "lanczos" and res.converged
    assert torch.allclose(res.values, torch.linalg.svdvals(A)[:5], rtol=1e-8)
    assert singular_values(A).method == "exact"                     # all values
    assert singular_values(A, k=600 // 8 + 1).method == "exact"     # k over 1/8 of min(m, n)


def test_auto_picks_exact_for_a_flat_spectrum_below_the_crossover_and_lanczos_above(monkeypatch):
    g = torch.Generator().manual_seed(1)
    A = torch.randn(600, 700, generator=g, dtype=torch.float64)   # Marchenko-Pastur: PR ~ 300 > 4k
    res = singular_values(A, k=5)
    assert res.method == "exact" and torch.equal(res.values, torch.linalg.svdvals(A)[:5])
    monkeypatch.setattr(linalg, "AUTO_FLAT_LANCZOS_MIN_DIM", 600)  # as if the matrix were past the crossover
    res = singular_values(A, k=5)
    assert res.method == "lanczos" and res.converged
    assert torch.allclose(res.values, torch.linalg.svdvals(A)[:5], rtol=1e-8)


def test_auto_falls_back_to_exact_when_lanczos_has_not_converged_within_its_budget(monkeypatch):
    A = decaying()
    monkeypatch.setattr(linalg, "_lanczos_budget", lambda k, n: k + 2)
    res = singular_values(A, k=5)
    assert res.method == "exact" and res.converged and torch.equal(res.values, torch.linalg.svdvals(A)[:5])
    lz = singular_values(A, k=5, method="lanczos")                 # an explicit choice is not overridden
    assert lz.method == "lanczos" and not lz.converged


@pytest.mark.parametrize("decay", [0.5, 0.9, 0.99, 1.0])
def test_participation_ratio_estimate_is_close_to_the_exact_one(decay):
    A, s = planted(m=400, n=300, decay=decay)
    est = linalg.participation_ratio_estimate(A, probes=64, seed=0)
    assert est == pytest.approx(participation_ratio(s), rel=0.35)
    assert linalg.participation_ratio_estimate(torch.zeros(5, 4)) == 0.0


def test_randomized_warm_start_reuses_basis_and_tracks_a_perturbed_matrix():
    A, s = planted(decay=0.7)
    first = singular_values(A, k=5, method="randomized", n_iter=1)
    g = torch.Generator().manual_seed(5)
    B = A + 1e-3 * torch.randn(A.shape, generator=g, dtype=torch.float64)
    warm = singular_values(B, k=5, method="randomized", n_iter=0, warm=first.basis)
    assert torch.allclose(warm.values, torch.linalg.svdvals(B)[:5], rtol=1e-4)
    with pytest.raises(NeumoError, match="warm-start basis"):
        singular_values(B.T, k=5, method="randomized", warm=first.basis)


def test_float64_option_and_validation():
    A = torch.randn(10, 6, generator=torch.Generator().manual_seed(0))
    assert singular_values(A, method="exact", dtype=torch.float64).values.dtype == torch.float64
    with pytest.raises(NeumoError, match="method"):
        singular_values(A, method="qr")
    with pytest.raises(NeumoError, match="pass k"):
        singular_values(A, method="lanczos")
    with pytest.raises(NeumoError, match="'k'"):
        singular_values(A, k=7)
    with pytest.raises(NeumoError, match="2-D"):
        singular_values(torch.ones(2, 2, 2))


def test_conv_reshape_policies():
    w = torch.randn(8, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    assert weight_matrix(w).shape == (8, 27)
    taps = weight_matrix(w, "per_tap")
    assert taps.shape == (9, 8, 3) and torch.equal(taps[4], w[:, :, 1, 1])
    assert weight_matrix(torch.ones(5)).shape == (1, 5)


@pytest.mark.parametrize("seed", [0, 1])
def test_shortcuts_equal_exact_values(seed):
    A, _ = planted(seed=seed, decay=0.95)
    s = torch.linalg.svdvals(A)
    assert stable_rank_fast(A) == pytest.approx(stable_rank(s), rel=1e-9)
    assert participation_ratio_fast(A) == pytest.approx(participation_ratio(s), rel=1e-9)
    for eps in (0.01, 0.1, 0.5):
        assert energy_rank_fast(A, eps) == energy_rank(s, eps)
    flat = torch.randn(120, 90, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert energy_rank_fast(flat, 0.01) == energy_rank(torch.linalg.svdvals(flat), 0.01)  # exact fallback
    assert energy_rank_fast(torch.zeros(4, 4)) == 0.0


def test_auto_lanczos_budget_grows_with_the_size():
    assert linalg._lanczos_budget(32, 1024) == 312                 # the fixed floor below n = 2496
    assert linalg._lanczos_budget(32, 4096) == 512 > 340           # 4096^2 Gaussian top-32 needs 340 products
    assert linalg._lanczos_budget(1, 100) == 200
