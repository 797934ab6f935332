"""S-factorised-orthogonality under the study contract: three seeds; plain training, a QR retraction and
full-matrix gradient descent inline beside the orthogonality penalty."""

import math

import pytest
import torch

from neumo.spectral.factorized import FactorizedLinear
from neumo.studies.judge import judge_units
from neumo.studies.registry import get_study
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.studies.spectral_factorised_orthogonality import factor_condition

ID = "S-factorised-orthogonality"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(ID, preset="quick", root=tmp_path_factory.mktemp("runs"))


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_quick_preset_holds_the_penalty_keeps_the_factors_conditioned(quick):
    v = quick
    assert v.seeds == [0, 1, 2] and all(g.passed for g in v.preconditions), v.reason
    by = {c.name: c for c in v.checks}
    assert v.status == "holds", v.reason
    # measured: plain training's worst condition number grows to ~5, the penalty's stays ~1.05
    assert by["plain_cond_grows"].mean == pytest.approx(5.0, abs=1.5)
    assert by["cond_over_plain"].ci_high < 0.35 and v.measured["max_cond"] < 1.2
    # the retraction is on the manifold after every step, and one step takes it only slightly off
    assert v.measured["retraction:max_cond"] == pytest.approx(1.0, abs=1e-9)
    assert 1.0 <= v.measured["retraction:max_cond_before_retraction"] < 1.1
    # drift from full-matrix GD (relative to full GD's own movement): penalty < plain < retraction here
    m = v.measured
    assert m["drift_from_full"] < m["plain:drift_from_full"] < m["retraction:drift_from_full"]
    # the penalty pays in loss at equal steps
    assert m["final_loss"] > 1.5 * m["plain:final_loss"]
    assert v.figures


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_plain_training_in_the_treatments_place_does_not_hold(quick):
    study = get_study(ID)
    units, seeds = load_units(quick.run_dir)
    assert set(units[0]) == {"treatment"}
    for arm in ("plain", "retraction"):
        broken = judge_units(study(), resolve_config(study, "quick"), units, seeds, treatment=arm)
        assert broken.status != "holds", arm
    broken = judge_units(study(), resolve_config(study, "quick"), units, seeds, treatment="plain")
    assert {c.name: c for c in broken.checks}["cond_over_plain"].passed is False   # ratio 1 > 0.5


def test_untrained_reference_does_not_hold(tmp_path):
    v = run_study(ID, overrides=["steps=2", "checkpoints=1"], seeds=2, root=tmp_path)
    assert v.status != "holds" and "full_final_loss" in v.reason


def test_factor_condition_is_one_on_the_manifold_and_follows_the_singular_values():
    f = FactorizedLinear(6, 5, 3, core=True, seed=0, dtype=torch.float64)
    assert factor_condition(f) == pytest.approx(1.0, abs=1e-12)
    with torch.no_grad():
        f.A.mul_(torch.tensor([1.0, 1.0, 3.0], dtype=torch.float64))   # one column of A three times longer
    assert factor_condition(f) == pytest.approx(9.0, rel=1e-9)            # cond(AᵀA) = 3²
    with torch.no_grad():
        f.B[0].zero_()
    assert factor_condition(f) == math.inf


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(ID, preset="full", root=tmp_path)
    assert full.status == quick.status, full.reason
