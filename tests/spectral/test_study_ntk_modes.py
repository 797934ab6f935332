"""S-ntk-modes: the quick verdict, the random basis in the treatment's place, a too-large step (not lazy),
and the rate fit on planted exponentials."""

from __future__ import annotations

import math

import pytest
import torch

from neumo.spectral.nulls import random_orthonormal
from neumo.studies.judge import judge_units
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.studies.spectral_ntk_modes import NTKModes, fit_decay_rates, rate_agreement

ID = "S-ntk-modes"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(ID, preset="quick", root=tmp_path_factory.mktemp("ntk_modes"))


def test_quick_preset_holds_and_the_random_basis_shows_no_ordering(quick):
    v = quick
    assert v.status == "holds", v.reason
    assert all(g.passed for g in v.preconditions)
    m = v.measured
    assert 0.85 <= m["slope"] <= 1.15 and m["r2"] > 0.97 and m["spearman"] > 0.95
    assert 1.0 <= m["geo_ratio"] <= 1.3          # measured ~1.13: the kernel grows a little during training
    assert {c.name for c in v.checks} >= {"ratio_at_least", "ratio_at_most", "slope_at_least", "r2", "spearman"}
    assert m["n_modes"] >= 15
    assert abs(m["random_basis:spearman"]) < 0.5 and m["random_basis:r2"] < 0.3
    assert all(c.passed is not True for r in v.checks for c in r.controls)
    assert v.figures and v.tables["modes"]


def test_random_basis_in_the_treatments_place_does_not_hold(quick):
    cfg = resolve_config(NTKModes, "quick")
    units, seeds = load_units(quick.run_dir)
    assert judge_units(NTKModes(), cfg, units, seeds, treatment="random_basis").status != "holds"


def test_a_large_step_on_a_narrow_network_is_not_judged(tmp_path):
    # width 32 with eta * lambda_1 = 1.9: the kernel moves far from its initial value (not lazy)
    v = run_study(ID, preset="quick", seeds=2, root=tmp_path, overrides=["width=32", "eta_top=1.9", "steps=300"])
    assert v.status == "inconclusive" and "lazy" in v.reason


def test_fit_decay_rates_recovers_planted_exponentials():
    t = torch.arange(401, dtype=torch.float64)
    rates = torch.tensor([0.3, 0.05, 0.01, 0.002], dtype=torch.float64)
    signs = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    proj = signs * 2.0 * torch.exp(-t[:, None] * rates)
    torch.testing.assert_close(fit_decay_rates(proj, floor=0.05), rates, rtol=1e-9, atol=1e-12)


def test_rate_agreement_on_exact_and_scrambled_rates():
    p = torch.logspace(-3, -0.5, 20, dtype=torch.float64)
    exact = rate_agreement(1.1 * p, p)
    assert exact["slope"] == pytest.approx(1.0) and exact["r2"] == pytest.approx(1.0)
    assert exact["spearman"] == pytest.approx(1.0) and exact["geo_ratio"] == pytest.approx(1.1)
    flat = rate_agreement(torch.full_like(p, 0.01) * (1 + 1e-3 * torch.randn(20, generator=torch.Generator()
                                                                         .manual_seed(0), dtype=torch.float64)), p)
    assert abs(flat["slope"]) < 0.01 and flat["positive"] == 1.0


def test_random_orthonormal_is_orthonormal_and_seeded():
    q = random_orthonormal(50, 7, seed=3)
    torch.testing.assert_close(q.T @ q, torch.eye(7, dtype=torch.float64))
    assert torch.equal(q, random_orthonormal(50, 7, seed=3)) and not torch.equal(q, random_orthonormal(50, 7, 4))
    # a Haar subspace's expected overlap with a fixed k-dim subspace is k^2 / dim, i.e. k / dim per direction
    over = [float((random_orthonormal(50, 7, s)[:7] ** 2).sum()) / 7 for s in range(200)]
    assert sum(over) / len(over) == pytest.approx(7 / 50, rel=0.15)
    with pytest.raises(Exception, match="'k' parameter"):
        random_orthonormal(5, 6, seed=0)
    assert not math.isnan(float(q.sum()))


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(ID, preset="full", root=tmp_path)
    assert full.status == quick.status, full.reason
