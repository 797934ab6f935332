"""S-inequality-rises under the study contract: three seeds, shuffled-label and noise-input arms,
rich-get-richer against the initial strength, a competence gate."""

import math
from pathlib import Path

import pytest
import torch

from neumo.studies.judge import judge_units
from neumo.studies.registry import get_study
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.stats import partial_spearman
from neumo.studies.spectral_inequality_rises import StrengthRecorder, rich_get_richer
from neumo.train.callbacks import StepState

ID = "S-inequality-rises"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(ID, preset="quick", root=tmp_path_factory.mktemp("runs"))


def test_quick_preset_fails_against_its_nulls(quick):
    v = quick
    assert v.seeds == [0, 1, 2] and v.preconditions[0].passed
    by = {c.name: c for c in v.checks}
    m = v.measured
    # measured: every arm raises the Gini of row norms from ~0.015 to ~0.09 (the nulls as much as learning);
    # column norms become *less* unequal on real digits than on either null
    assert m["gini_out_init"] == pytest.approx(0.015, abs=0.005)
    assert m["shuffled_labels:gini_out_ratio"] > 3.0 and m["noise_inputs:gini_out_ratio"] > 3.0
    assert by["gini_out_rise_over_shuffled_labels"].passed is False
    assert by["gini_in_rise_over_noise_inputs"].passed is False and by["gini_in_rise_over_noise_inputs"].mean < 1
    # initial strength does not predict growth, in any arm
    for arm in ("", "shuffled_labels:", "noise_inputs:"):
        assert abs(m[f"{arm}rich_get_richer_out"]) < 0.2 and abs(m[f"{arm}rich_get_richer_in"]) < 0.2
    assert by["rich_get_richer_out"].passed is False
    # the old windowed correlation is high in the nulls too: it measured persistent growth, not the Matthew effect
    assert m["shuffled_labels:rich_window_in"] > 0.5 and m["noise_inputs:rich_window_in"] > 0.5
    assert v.status == "fails"
    assert all(c.passed is not True for r in v.checks for c in r.controls)
    assert v.figures and all(Path(v.run_dir, f).is_file() for f in v.figures)


@pytest.mark.parametrize("arm", ["shuffled_labels", "noise_inputs"])
def test_a_null_in_the_treatments_place_does_not_hold(quick, arm):
    study = get_study(ID)
    units, seeds = load_units(quick.run_dir)
    assert seeds == [0, 1, 2] and set(units[0]) == {"treatment", "shuffled_labels", "noise_inputs"}
    broken = judge_units(study(), resolve_config(study, "quick"), units, seeds, treatment=arm)
    assert broken.status != "holds"
    assert "precondition failed: train_acc" in broken.reason


def test_an_untrained_network_does_not_hold(tmp_path):
    v = run_study(ID, overrides=["steps=2", "lag=1"], seeds=2, root=tmp_path)
    assert v.status == "inconclusive" and "precondition failed: train_acc" in v.reason


# ---------------------------------------------------------------- definitions (unit tests)


def test_rich_get_richer_against_the_initial_strength():
    s0 = torch.arange(1, 51, dtype=torch.float64)  # integers: growth below is exact
    assert rich_get_richer(s0, s0 * 1.5) == pytest.approx(1.0)      # growth proportional to strength
    assert rich_get_richer(s0, s0 + 3.0) == 0.0                      # equal growth: no correlation
    assert rich_get_richer(s0, 2 * s0.mean() - s0 * 0.5) == pytest.approx(-1.0)  # the weak catch up


def test_partial_spearman():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, generator=g, dtype=torch.float64)
    y = x + 0.5 * torch.randn(200, generator=g, dtype=torch.float64)
    assert partial_spearman(x, y, torch.ones(200)) == pytest.approx(float(torch.corrcoef(
        torch.stack([x.argsort().argsort().double(), y.argsort().argsort().double()]))[0, 1]))
    assert math.isnan(partial_spearman(x, y, x))      # nothing left to correlate once x is partialled out
    z = torch.randn(200, generator=g, dtype=torch.float64)
    assert partial_spearman(x + z, y + z, z) < partial_spearman(x + z, y + z, torch.ones(200))


def test_strength_recorder_records_every_lag_steps():
    w = torch.nn.Parameter(torch.ones(4, 3))
    rec = StrengthRecorder(w, lag=2)
    assert rec.rows[0]["gini_out"] == 0.0 and rec.rows[0]["gini_in"] == 0.0
    for step in range(1, 7):
        with torch.no_grad():
            w[0] += 1.0          # one neuron grows
        rec.on_after_optimizer_step(None, StepState(step=step))
    assert [r["step"] for r in rec.rows] == [0, 2, 4, 6]
    assert rec.rows[-1]["gini_out"] > rec.rows[1]["gini_out"] > 0
    assert len(rec.window["out"]) == 3 and len(rec.partial["out"]) == 2


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(ID, preset="full", root=tmp_path)
    assert full.status == quick.status, full.reason
