"""S-embedding-principle: the quick preset's verdict, the untrained split in the treatment's place, and the
predicted zero count on a dense Hessian (one new zero eigenvalue per split unit at a critical point, none
away from it)."""

from __future__ import annotations

import pytest

from neumo.spectral.curvature import find_critical_point_
from neumo.studies.judge import judge_units
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.studies.spectral_embedding_principle import EmbeddingPrinciple, _mse, _problem, _student, split_measure

ID = "S-embedding-principle"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(ID, preset="quick", root=tmp_path_factory.mktemp("embedding"))


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_quick_preset_holds(quick):
    v = quick
    assert v.status == "holds", v.reason
    assert all(g.passed for g in v.preconditions)
    by = {c.name: c for c in v.checks}
    assert by["zero_count_error"].per_seed == [0.0, 0.0, 0.0]
    assert by["split_stays_critical"].ci_high < -12                     # measured ~10^-16
    assert by["zero_frac_gain"].ci_low > 0.4                            # measured 0.66 [0.61, 0.71]
    for c in v.checks:                                                  # the untrained split passes nothing
        assert all(k.passed is False for k in c.controls)
    m = v.measured
    assert m["zeros_wide"] - m["zeros_narrow"] == 2 and m["untrained:zero_gain"] == 0
    assert m["neg_narrow"] == 0 and m["neg_wide"] >= 1                  # the split minimum is a saddle
    assert m["spearman_width_frac"] > 0.8
    assert v.figures


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_untrained_in_the_treatments_place_does_not_hold(quick):
    cfg = resolve_config(EmbeddingPrinciple, "quick")
    units, seeds = load_units(quick.run_dir)
    assert judge_units(EmbeddingPrinciple(), cfg, units, seeds, treatment="untrained").status != "holds"


@pytest.mark.parametrize("k", [1, 2, 3])
def test_one_new_zero_eigenvalue_per_split_unit_at_a_critical_point(k):
    batch = _problem(100, 64, 6)
    m = _student(100, 3)
    off = split_measure(m, batch, k, 1e-9)
    assert off["zero_gain"] == 0                                        # not critical: no new zero
    find_critical_point_(m, _mse, batch, tol=1e-14, lbfgs_iters=2000, newton_steps=20)
    on = split_measure(m, batch, k, 1e-9)
    assert on["grad_narrow"] < 1e-12 and on["band_count"] == 0 and on["zero_gain"] == k
    assert on["function_change"] < 1e-12 and on["log10_grad_wide"] < -12


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(ID, preset="full", root=tmp_path)
    assert full.status == quick.status, full.reason
