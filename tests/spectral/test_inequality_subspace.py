"""Inequality measures and subspace tools against closed forms, scipy and scikit-learn."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.decomposition import PCA

from neumo.errors import NeumoError
from neumo.spectral.inequality import gini, inverse_herfindahl, neuron_strengths, spearman, top_share
from neumo.spectral.subspace import principal_angles, subspace_overlap, update_pca


def test_gini_closed_forms_and_known_nulls():
    assert gini(torch.ones(50)) == 0.0
    one_hot = torch.zeros(10)
    one_hot[3] = 1
    assert gini(one_hot) == pytest.approx(0.9)  # (n - 1) / n
    assert gini([1.0, 2.0, 3.0]) == pytest.approx(sum(abs(a - b) for a in (1, 2, 3) for b in (1, 2, 3)) / (2 * 9 * 2))
    g = torch.Generator().manual_seed(0)
    u = torch.rand(200_000, generator=g, dtype=torch.float64) * 2 - 1
    assert gini(u.abs()) == pytest.approx(1 / 3, abs=3e-3)
    z = torch.randn(200_000, generator=g, dtype=torch.float64)
    assert gini(z.abs()) == pytest.approx(math.sqrt(2) - 1, abs=3e-3)
    with pytest.raises(NeumoError, match="non-negative"):
        gini([-1.0, 1.0])


def test_top_share_and_herfindahl():
    x = torch.arange(1, 101, dtype=torch.float64)
    assert top_share(x, 0.01) == pytest.approx(100 / 5050)
    assert top_share(x, 0.10) == pytest.approx(sum(range(91, 101)) / 5050)
    assert inverse_herfindahl([0.25] * 4) == pytest.approx(4.0)
    assert inverse_herfindahl([1.0, 0.0]) == pytest.approx(1.0)
    with pytest.raises(NeumoError, match="'q'"):
        top_share(x, 0.0)


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 60).astype(float)
    b = a + rng.normal(size=60)
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) == 0.0


def test_neuron_strengths_are_row_and_column_norms():
    w = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
    s = neuron_strengths(w)
    assert torch.allclose(s["out"], torch.tensor([5.0, 1.0], dtype=torch.float64))
    assert torch.allclose(s["in"], torch.tensor([3.0, math.sqrt(17)], dtype=torch.float64))


def test_principal_angles_and_overlap():
    e = torch.eye(4, dtype=torch.float64)
    A = e[:, :2]
    B = torch.stack([e[:, 0], (e[:, 1] + e[:, 2]) / math.sqrt(2)], 1)
    ang = principal_angles(A, B)
    assert torch.allclose(ang, torch.tensor([0.0, math.pi / 4], dtype=torch.float64), atol=1e-7)
    assert subspace_overlap(A, B) == pytest.approx(0.75)
    assert subspace_overlap(A, e[:, 2:]) == pytest.approx(0.0)
    with pytest.raises(NeumoError, match="different dimensions"):
        principal_angles(A, torch.eye(3)[:, :1])


def test_update_pca_matches_sklearn():
    g = torch.Generator().manual_seed(0)
    ups = [torch.randn(6, 5, generator=g, dtype=torch.float64) for _ in range(12)]
    res = update_pca(ups)
    ref = PCA().fit(torch.stack([u.reshape(-1) for u in ups]).numpy())
    k = len(ref.explained_variance_ratio_)
    assert np.allclose(res.explained_variance_ratio[:k].numpy(), ref.explained_variance_ratio_, atol=1e-10)
    assert res.cumulative[-1] == pytest.approx(1.0)
    # a planted 2-D family of updates needs two components
    base = torch.randn(2, 30, generator=g, dtype=torch.float64)
    planted = [torch.randn(2, generator=g, dtype=torch.float64) @ base for _ in range(10)]
    assert update_pca(planted, center=False).n_components(0.999) == 2
    with pytest.raises(NeumoError, match="two updates"):
        update_pca([torch.ones(3)])
