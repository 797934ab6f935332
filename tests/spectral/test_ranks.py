"""Effective ranks against closed forms, planted spectra and invariants."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neumo.errors import NeumoError
from neumo.spectral.ranks import (eigen_ranks, energy_rank, entropy_rank, matrix_ranks, matrix_stable_rank,
                                  participation_ratio, spectrum_ranks, stable_rank)


@pytest.mark.parametrize("n", [1, 3, 17, 64])
def test_identity_has_every_rank_n(n):
    r = matrix_ranks(torch.eye(n, dtype=torch.float64))
    for k, v in r.items():
        assert v == pytest.approx(n, rel=1e-12), k


def test_rank_one_matrix_has_every_rank_one():
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(30, 1, generator=g).double(), torch.randn(1, 20, generator=g).double()
    r = matrix_ranks(u @ v)
    for k, val in r.items():
        assert val == pytest.approx(1.0, abs=1e-6), k


def test_planted_spectrum_closed_forms():
    s = torch.tensor([4.0, 2.0, 1.0, 1.0])
    e = s ** 2  # 16, 4, 1, 1 -> total 22
    assert stable_rank(s) == pytest.approx(22 / 16)
    assert participation_ratio(s) == pytest.approx(22 ** 2 / (256 + 16 + 1 + 1))
    p = s / s.sum()
    assert entropy_rank(s) == pytest.approx(math.exp(-(p * p.log()).sum().item()))
    # cumulative energy 16, 20, 21, 22: 20/22=0.909, 21/22=0.9545
    assert energy_rank(s, eps=0.1) == 2
    assert energy_rank(s, eps=0.05) == 3
    assert energy_rank(s, eps=0.0) == 4
    assert energy_rank(e.sqrt(), eps=0.2) == 2


def test_planted_matrix_spectrum_recovered():
    g = torch.Generator().manual_seed(1)
    q1, _ = torch.linalg.qr(torch.randn(40, 40, generator=g, dtype=torch.float64))
    q2, _ = torch.linalg.qr(torch.randn(30, 30, generator=g, dtype=torch.float64))
    s = torch.linspace(5, 0.1, 30, dtype=torch.float64)
    A = q1[:, :30] @ torch.diag(s) @ q2.T
    assert matrix_ranks(A) == pytest.approx(spectrum_ranks(s), rel=1e-9)


def test_identity_energy_rank_follows_ceil_formula():
    n = 300
    assert energy_rank(torch.ones(n), eps=0.01) == math.ceil(0.99 * n)


@settings(max_examples=40, deadline=None)
# zeros or normal floats: c * s must not underflow to 0 (5e-324 * 0.5 == 0 changes the rank honestly)
@given(st.lists(st.one_of(st.just(0.0), st.floats(1e-200, 1e3)), min_size=1, max_size=40), st.floats(1e-3, 1e3))
def test_ranks_are_scale_invariant_and_bounded(vals, c):
    s = torch.tensor(vals, dtype=torch.float64)
    nnz = int((s > 0).sum())
    r, rc = spectrum_ranks(s), spectrum_ranks(c * s)
    for k in r:
        assert rc[k] == pytest.approx(r[k], rel=1e-6, abs=1e-9), k
        if nnz == 0:
            assert r[k] == 0
        else:
            assert 1 - 1e-9 <= r[k] <= nnz + 1e-9, k


def test_batch_matches_loop_and_numpy_input():
    g = torch.Generator().manual_seed(2)
    A = torch.randn(3, 2, 8, 5, generator=g)
    rb = matrix_ranks(A)
    assert rb["stable_rank"].shape == (3, 2)
    for i in range(3):
        for j in range(2):
            single = matrix_ranks(A[i, j])
            for k in single:
                assert float(rb[k][i, j]) == pytest.approx(single[k], rel=1e-12)
    assert spectrum_ranks(np.array([1.0, 1.0])) == spectrum_ranks([1.0, 1.0])


def test_zero_spectrum_and_bad_input():
    assert spectrum_ranks(torch.zeros(5)) == {k: 0.0 for k in spectrum_ranks(torch.zeros(5))}
    with pytest.raises(NeumoError, match="eps"):
        energy_rank(torch.ones(3), eps=1.0)
    with pytest.raises(NeumoError, match="1-D"):
        stable_rank(torch.ones(2, 2))
    with pytest.raises(NeumoError, match="NaN"):
        stable_rank(torch.tensor([1.0, float("nan")]))
    with pytest.raises(NeumoError, match="matrix"):
        matrix_ranks(torch.ones(3))


def test_eigen_ranks_conventions_and_negative_mass():
    lam = torch.tensor([3.0, 1.0, -1.0, -1.0])
    r = eigen_ranks(lam, convention="abs")
    assert r["negative_mass"] == pytest.approx(2 / 12)
    assert r["stable_rank"] == pytest.approx(12 / 9)
    rp = eigen_ranks(lam, convention="positive")
    assert rp["stable_rank"] == pytest.approx(10 / 9)
    with pytest.raises(NeumoError, match="convention"):
        eigen_ranks(lam, convention="signed")


def test_matrix_stable_rank_reshapes_conv_kernels():
    w = torch.zeros(4, 2, 3, 3)
    w[0, 0, 0, 0] = 1.0
    w[1, 1, 2, 2] = 1.0
    assert matrix_stable_rank(w) == pytest.approx(2.0)
