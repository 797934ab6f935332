"""S-rebasin: the quick preset's verdict, the random permutation in the treatment's place, and an under-trained
pair (weight matching itself is unit-tested on planted permutations in test_symmetry.py)."""

from __future__ import annotations

import pytest

from neumo.studies.judge import judge_units
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.studies.spectral_rebasin import Rebasin

ID = "S-rebasin"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(ID, preset="quick", root=tmp_path_factory.mktemp("rebasin"))


def test_quick_preset_holds(quick):
    v = quick
    assert v.status == "holds", v.reason
    assert all(g.passed for g in v.preconditions)
    checks = {c.name: c for c in v.checks}
    assert checks["naive_barrier"].ci_low > 0.3              # measured ~0.64 nats
    ratio = checks["matched_over_naive"]
    assert ratio.ci_high < 0.15                              # measured ~0.05
    (ctrl,) = ratio.controls
    assert ctrl.arm == "random_permutation" and ctrl.passed is not True and ctrl.mean > 0.5   # measured ~1.06
    m = v.measured
    assert m["random_barrier"] > 0.5 * m["naive_barrier"]
    assert m["test_err_barrier_matched"] < m["test_err_barrier_naive"]
    assert m["narrow_matched_barrier"] / m["narrow_naive_barrier"] > ratio.mean   # width helps matching
    assert v.figures


def test_random_permutation_in_the_treatments_place_does_not_hold(quick):
    cfg = resolve_config(Rebasin, "quick")
    units, seeds = load_units(quick.run_dir)
    assert judge_units(Rebasin(), cfg, units, seeds, treatment="random_permutation").status != "holds"


def test_an_under_trained_pair_is_not_judged(tmp_path):
    v = run_study(ID, preset="quick", seeds=2, root=tmp_path, overrides=["steps=3"])
    assert v.status == "inconclusive" and "train_acc" in v.reason


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(ID, preset="full", root=tmp_path)
    assert full.status == quick.status, full.reason
