"""S-lottery-ticket: the quick preset's verdict, each control in the treatment's place, and an under-trained run
(IMP, rewinding, random masks and reinitialisation are unit-tested in test_pruning.py)."""

from __future__ import annotations

import pytest

from neumo.studies.judge import judge_units
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.studies.spectral_lottery_ticket import LotteryTicket

ID = "S-lottery-ticket"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(ID, preset="quick", root=tmp_path_factory.mktemp("lottery"))


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_quick_preset_holds(quick):
    v = quick
    assert v.status == "holds", v.reason
    assert all(g.passed for g in v.preconditions)
    (check,) = v.checks
    assert check.ci_low > -0.015 and abs(check.mean) < 0.01       # measured +0.001 [-0.007, 0.009]
    ctrl = {c.arm: c for c in check.controls}
    assert ctrl["random_mask"].passed is False and ctrl["random_mask"].mean < -0.02   # measured -0.040
    assert ctrl["reinit"].passed is not True and ctrl["reinit"].mean < check.mean     # measured -0.013, undecided
    m = v.measured
    assert 0.10 <= m["remaining"] <= 0.20 and m["remaining"] == pytest.approx(0.6 ** 4, abs=0.005)
    assert m["dense_test_acc"] > 0.9


@pytest.mark.parametrize("arm", ["random_mask", "reinit"])
@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_a_control_in_the_treatments_place_does_not_hold(quick, arm):
    cfg = resolve_config(LotteryTicket, "quick")
    units, seeds = load_units(quick.run_dir)
    assert judge_units(LotteryTicket(), cfg, units, seeds, treatment=arm).status != "holds"


def test_an_under_trained_dense_network_is_not_judged(tmp_path):
    v = run_study(ID, preset="quick", seeds=2, root=tmp_path, overrides=["steps=5", "rewind_steps=1"])
    assert v.status == "inconclusive" and "dense_train_acc" in v.reason


@pytest.mark.slow
def test_full_preset_is_not_refuted_and_its_random_mask_fails(tmp_path):
    # measured: the full preset is *inconclusive* (ticket -0.009 [-0.017, -0.001] straddles -0.015), not
    # holds as quick; see docs/studies/S-lottery-ticket.md
    full = run_study(ID, preset="full", root=tmp_path)
    assert full.status in ("holds", "inconclusive"), full.reason
    ctrl = {c.arm: c for c in full.checks[0].controls}
    assert ctrl["random_mask"].passed is False and ctrl["reinit"].passed is not True
