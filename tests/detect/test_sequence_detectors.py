"""Lastde, Lastde++ and SpecDetect on hand-made series with hand-computed values, the reference code's
binning (torch.histc, F.cosine_similarity) as an oracle, and the per-position samples they use."""

from __future__ import annotations

import cmath
import math

import numpy as np
import pytest
import torch

from neumo.detect import detectors as d
from neumo.detect import sequence as sq
from neumo.detect.registry import compute_scores, detector_names
from neumo.detect.score import TokenStats, score_ids
from neumo.detect.stats import token_stats
from neumo.errors import NeumoError


def _stats(logprob, samples=None) -> TokenStats:
    n = len(logprob)
    z = np.zeros(n)
    return TokenStats("hand", np.arange(n), ["x"] * n, np.asarray(logprob, float), np.ones(n, np.int64), z, z,
                      np.ones(n, bool), np.ones(n, bool), sample_logprob=samples)


# ---- multiscale diversity entropy ---------------------------------------------------------------------------

def test_moving_average_matches_the_reference_example():
    x = [1, 2, 13, 7, 9, 5, 4]
    np.testing.assert_allclose(sq.moving_average(x, 2)[:, 0], [1.5, 7.5, 10.0, 8.0, 7.0, 4.5])
    np.testing.assert_allclose(sq.moving_average(x, 3)[:, 0], [16 / 3, 22 / 3, 29 / 3, 7.0, 6.0])
    np.testing.assert_allclose(sq.moving_average(x, 1)[:, 0], x)


def test_diversity_entropy_by_hand():
    # orbits (1,-1), (-1,1), (1,1): cosines -1 and 0 fall in bins 0 and 1 of 2: p = (1/2, 1/2), DE = 1
    assert sq.diversity_entropy([1, -1, 1, 1], embed=2, eps=2) == pytest.approx(1.0)
    # (1,2), (2,1), ... : every cosine is 4/5, one bin: DE = 0
    assert sq.diversity_entropy([1, 2, 1, 2, 1], embed=2, eps=4) == pytest.approx(0.0)
    # orbits (1,0), (0,0), (0,1), (1,1): cosines 0 (zero norm), 0, 1/sqrt(2) -> bins 2, 2, 3 of 4
    want = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)) / math.log(4)
    assert sq.diversity_entropy([1, 0, 0, 1, 1], embed=2, eps=4) == pytest.approx(want)
    # no pair of orbits: 0
    assert sq.diversity_entropy([1.0, 2.0], embed=2, eps=4) == 0.0


def _reference_de(x: np.ndarray, embed: int, eps: int) -> float:
    """The reference code's steps, with torch: unfold, cosine_similarity, histc over [-1, 1]."""
    t = torch.tensor(x, dtype=torch.float64)
    orbits = t.unfold(0, embed, 1)
    cos = torch.nn.functional.cosine_similarity(orbits[:-1], orbits[1:], dim=-1)
    hist = torch.histc(cos.float(), bins=eps, min=-1, max=1).double()
    p = hist / hist.sum()
    return float(-torch.nansum(p * torch.log(p)) / math.log(eps))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diversity_entropy_matches_the_reference_binning(seed):
    rng = np.random.default_rng(seed)
    x = -rng.exponential(2.0, size=60)                    # log-prob-like: negative, skewed
    for embed, eps in ((3, 600), (4, 480), (2, 7)):
        assert sq.diversity_entropy(x, embed, eps) == pytest.approx(_reference_de(x, embed, eps), abs=1e-6)
    batch = np.stack([x, x[::-1], 2 * x], axis=1)         # columns are independent series
    np.testing.assert_allclose(sq.diversity_entropy(batch, 3, 600),
                               [sq.diversity_entropy(batch[:, j], 3, 600) for j in range(3)])


def test_multiscale_de_and_lastde_by_hand():
    x = [1, -1, 1, 1]
    # DE(1) = 1 (above); scale 2: (0, 0, 1), orbits (0,0), (0,1), one cosine 0 -> DE(2) = 0; std(1, 0) = 1/sqrt 2
    assert sq.multiscale_de(x, embed=2, eps=2, tau_max=2) == pytest.approx(1 / math.sqrt(2))
    # Lastde = mean / MDE = 0.5 / (1/sqrt 2); eps = int(0.5 * 4) = 2 bins
    assert sq.lastde(x, embed=2, eps_per_token=0.5, tau_max=2) == pytest.approx(0.5 * math.sqrt(2))
    # scales longer than the series contribute DE = 0: std(1, 0, 0, 0, 0) with ddof 1
    assert sq.multiscale_de(x, embed=2, eps=2, tau_max=5) == pytest.approx(np.std([1, 0, 0, 0, 0], ddof=1))
    # a constant series has MDE 0: floored, not a division by zero
    assert sq.lastde([-2.0] * 30, 3, 10.0, 5) == pytest.approx(-2.0 / sq.MDE_FLOOR)


def test_lastde_detector_uses_the_reference_defaults():
    rng = np.random.default_rng(4)
    lp = -rng.exponential(2.0, size=80)
    s = _stats(lp)
    assert d.lastde(s) == pytest.approx(sq.lastde(lp, embed=3, eps_per_token=10.0, tau_max=5))
    de = [_reference_de(sq.moving_average(lp, t)[:, 0], 3, 800) for t in range(1, 6)]
    assert d.lastde(s) == pytest.approx(lp.mean() / np.std(de, ddof=1), rel=1e-6)


def test_lastde_pp_is_the_z_score_against_the_samples():
    rng = np.random.default_rng(5)
    lp = -rng.exponential(1.0, size=50)
    samples = -rng.exponential(2.0, size=(50, 8))
    got = d.lastde_pp(_stats(lp, samples))
    ref = [sq.lastde(samples[:, j], 4, 8.0, 15) for j in range(8)]
    want = (sq.lastde(lp, 4, 8.0, 15) - np.mean(ref)) / np.std(ref, ddof=1)
    assert got == pytest.approx(want)
    with pytest.raises(NeumoError, match="n_samples"):
        d.lastde_pp(_stats(lp))


# ---- spectral energy -----------------------------------------------------------------------------------------

def _dft_energy(x) -> float:
    x = np.asarray(x, float) - np.mean(x)
    T = len(x)
    X = [sum(x[n] * cmath.exp(-2j * math.pi * k * n / T) for n in range(T)) for k in range(T // 2)]
    return sum(abs(v) ** 2 for v in X) / T**2


def test_spectral_energy_by_hand():
    assert sq.spectral_energy([1, -1, 1, -1]) == pytest.approx(0.0)        # all power at Nyquist (k = 2)
    assert sq.spectral_energy([1, 0, -1, 0]) == pytest.approx(4 / 16)     # X_1 = 2
    assert sq.spectral_energy([3, 3, 3]) == pytest.approx(0.0)            # centred: nothing left
    x = np.random.default_rng(6).normal(size=33)
    assert sq.spectral_energy(x) == pytest.approx(_dft_energy(x))
    assert d.specdetect(_stats([1, 0, -1, 0])) == pytest.approx(-0.25)


# ---- the samples they use -------------------------------------------------------------------------------------

def test_samples_come_from_the_model_distribution():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([[0.0, 40.0, 0.0], [1.0, 0.0, -1.0]])
    out = token_stats(logits, torch.tensor([0, 0]), n_samples=4000, generator=g)
    assert out["sample_logprob"].shape == (2, 4000)
    assert torch.allclose(out["sample_logprob"][0], torch.log_softmax(logits[0], -1)[1])   # always the argmax
    se = out["sample_logprob"][1].std() / math.sqrt(4000)
    assert abs(out["sample_logprob"][1].mean() - out["mean"][1]) < 5 * se               # E_q log q = -H
    with pytest.raises(ValueError, match="Generator"):
        token_stats(logits, torch.tensor([0, 0]), n_samples=3)


def test_samples_do_not_depend_on_the_batch(table_lm):
    alone = score_ids(table_lm, [[0, 1, 2, 3, 0, 1]], n_samples=16)[0]
    batched = score_ids(table_lm, [[3, 3, 2], [0, 1, 2, 3, 0, 1], [1, 1]], n_samples=16)[1]
    np.testing.assert_array_equal(alone.sample_logprob, batched.sample_logprob)
    other = score_ids(table_lm, [[0, 1, 2, 3, 0, 1]], n_samples=16, sample_seed=1)[0]
    assert not np.array_equal(alone.sample_logprob, other.sample_logprob)
    assert score_ids(table_lm, [[0, 1, 2]], n_samples=0)[0].sample_logprob is None
    assert alone.span(1, 3).sample_logprob.shape == (2, 16)
    with pytest.raises(NeumoError, match="n_samples"):
        score_ids(table_lm, [[0, 1]], n_samples=-1)


def test_registered_and_computed_from_one_pass(table_lm):
    assert {"lastde", "lastde++", "specdetect"} <= set(detector_names())
    s = score_ids(table_lm, [[0, 1, 2, 3] * 10])[0]
    assert s.sample_logprob.shape == (40, 100)            # N_SAMPLES: Lastde++'s 100 samples by default
    sc = compute_scores(s, ["lastde", "lastde++", "specdetect"])
    assert all(np.isfinite(v) for v in sc.values())
    assert sc["lastde"] == pytest.approx(d.lastde(s)) and sc["specdetect"] <= 0
