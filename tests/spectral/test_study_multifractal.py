"""S-multifractal: the quick verdict (the spectrum narrows; alpha_0 falls, partly as shuffled weights do),
the shuffled weights in the treatment's place, and an untrained network."""

from __future__ import annotations

import pytest

from neumo.studies.judge import judge_units
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.studies.spectral_multifractal import Multifractal

ID = "S-multifractal"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(ID, preset="quick", root=tmp_path_factory.mktemp("multifractal"))


def test_quick_preset_fails_the_spectrum_narrows(quick):
    v = quick
    assert v.status == "fails" and "width_widens" in v.reason, v.reason
    assert all(g.passed for g in v.preconditions)
    by = {c.name: c for c in v.checks}
    assert by["width_widens"].passed is False and by["width_widens"].ci_high < 0
    assert by["alpha0_shifts_left"].passed is True            # alpha_0 falls from ~7.6 to ~0.5 ...
    assert by["alpha0_beyond_shuffled"].passed is True        # ... more than with shuffled weights (~4.5)
    # ... but shuffled weights also shift alpha_0 left: the raw shift is partly the weight distribution's
    assert any(c.passed for c in by["alpha0_shifts_left"].controls) and v.defects
    m = v.measured
    assert m["alpha0_last"] < m["shuffled_weights:alpha0_last"] < m["alpha0_first"]
    assert m["width_last"] < m["width_first"]
    assert v.tables["checkpoints"] and v.figures


def test_shuffled_weights_in_the_treatments_place_do_not_hold(quick):
    cfg = resolve_config(Multifractal, "quick")
    units, seeds = load_units(quick.run_dir)
    assert judge_units(Multifractal(), cfg, units, seeds, treatment="shuffled_weights").status != "holds"


def test_an_untrained_network_is_not_judged(tmp_path):
    v = run_study(ID, preset="quick", seeds=2, root=tmp_path, overrides=["steps=4", "checkpoints=1"])
    assert v.status == "inconclusive" and "train_acc" in v.reason


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(ID, preset="full", root=tmp_path)
    assert full.status == quick.status, full.reason
