"""S-dropout-l2: the quick preset's verdict ((a) holds, (b) fails), the wrong closed forms in the treatment's
place, and the Monte Carlo helper (deterministic per seed, resolves the penalty)."""

from __future__ import annotations

import pytest

from neumo.studies.judge import judge_units
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.studies.spectral_dropout_l2 import DropoutL2, dropout_monte_carlo

ID = "S-dropout-l2"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(ID, preset="quick", root=tmp_path_factory.mktemp("dropout"))


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_quick_preset_identity_holds_and_rank_claim_fails(quick):
    v = quick
    assert all(g.passed for g in v.preconditions)
    by = {c.name: c for c in v.checks}
    mc = by["mc_deviation"]
    assert mc.passed is True and mc.ci_high < 0.005                       # measured 0.0009
    assert all(c.passed is False for c in mc.controls)                    # no penalty 0.32, swapped 0.52
    # (b) measured: dropout lowers the entropy rank of W2 by only ~7% (0.93), and *raises* its update's (~1.47)
    w, dw = by["erank_W_over_no_dropout"], by["erank_dW_over_no_dropout"]
    assert w.passed is False and 0.85 < w.mean < 1.0
    assert dw.passed is False and dw.mean > 1.1
    for c in (w, dw):
        assert all(k.passed is not True for k in c.controls)
    assert {k.arm: k for k in w.controls}["reseeded"].mean == pytest.approx(1.0, abs=0.03)
    assert v.status == "fails" and "erank" in v.reason
    assert v.measured["mc_in_interval"] == 1.0


@pytest.mark.parametrize("arm", ["no_penalty", "swapped_convention"])
@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_a_wrong_closed_form_in_the_treatments_place_does_not_hold(quick, arm):
    cfg = resolve_config(DropoutL2, "quick")
    units, seeds = load_units(quick.run_dir)
    broken = judge_units(DropoutL2(), cfg, units, seeds, treatment=arm)
    assert broken.status != "holds"
    assert next(c for c in broken.checks if c.name == "mc_deviation").passed is False


def test_monte_carlo_helper_is_seeded_and_resolves_the_penalty():
    a, b = dropout_monte_carlo(3, 20, 5, 0.3, 4000), dropout_monte_carlo(3, 20, 5, 0.3, 4000)
    assert a == b
    assert abs(a["mc_mean"] - a["closed"]) < 4 * a["mc_se"]
    assert abs(a["mc_mean"] - a["plain"]) > 10 * a["mc_se"] and abs(a["mc_mean"] - a["swapped"]) > 10 * a["mc_se"]
    q, p = 0.3, 0.7   # the swapped form exchanges (1 - p) / (2 p) and p / (2 (1 - p))
    assert (a["swapped"] - a["plain"]) / (a["closed"] - a["plain"]) == pytest.approx((p / (2 * q)) / (q / (2 * p)))


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(ID, preset="full", root=tmp_path)
    assert full.status == quick.status, full.reason
