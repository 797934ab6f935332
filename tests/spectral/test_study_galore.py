"""S-galore under the study contract: three seeds, Adam and a random-projection GaLore inline, each optimizer
with its own learning-rate sweep; the optimizer state measured in bytes."""

import pytest
import torch

from neumo.nn import build_model
from neumo.spectral.galore import GaLore, adam_state_bytes
from neumo.studies.judge import judge_units
from neumo.studies.registry import get_study
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.studies.spectral_galore import GaLoreConfig, make_optimizer

ID = "S-galore"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(ID, preset="quick", root=tmp_path_factory.mktemp("runs"))


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_quick_preset_is_undecided_on_the_margin_at_a_sixth_of_the_state(quick):
    v = quick
    assert v.seeds == [0, 1, 2] and all(g.passed for g in v.preconditions), v.reason
    by = {c.name: c for c in v.checks}
    # measured (2026-12-03): GaLore ends 0.029 nats above Adam, interval [-0.010, 0.068] straddles 0.05;
    # state 33,192 vs 209,000 bytes (0.159). An earlier machine gave 0.025 [0.002, 0.047] (holds): the
    # per-seed losses move with the CPU's rounding, see docs/studies/S-galore.md
    gap, state = by["loss_gap_to_adam"], by["state_over_adam"]
    assert v.status == "inconclusive" and "undecided: loss_gap_to_adam" in v.reason
    assert gap.passed is None and gap.ci_low < 0.05 < gap.ci_high and 0.0 < gap.mean < 0.05
    assert state.passed and state.mean == pytest.approx(33192 / 209000, rel=1e-9)
    # the random projection does not pass in GaLore's place, and it ends higher on average
    ctrl = gap.controls[0]
    assert ctrl.arm == "random_projection" and ctrl.passed is not True and ctrl.mean > gap.mean
    assert v.measured["random_projection:state_bytes"] == v.measured["state_bytes"]
    assert v.figures


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_a_null_in_the_treatments_place_does_not_hold(quick):
    study = get_study(ID)
    units, seeds = load_units(quick.run_dir)
    assert set(units[0]) == {"treatment"}
    for arm in ("random_projection", "adam"):
        broken = judge_units(study(), resolve_config(study, "quick"), units, seeds, treatment=arm)
        assert broken.status != "holds", arm
    # Adam in GaLore's place: state / Adam's = 1 fails the memory check outright
    broken = judge_units(study(), resolve_config(study, "quick"), units, seeds, treatment="adam")
    assert {c.name: c for c in broken.checks}["state_over_adam"].passed is False


def test_a_full_rank_galore_does_not_save_memory():
    # rank = min(m, n) of every matrix: the moments are as big as Adam's, so the ratio is far above 1/4
    cfg = GaLoreConfig(hidden=[16, 16], rank=16)
    opts = {arm: make_optimizer(arm, build_model("mlp", seed=0, in_dim=64, out_dim=10, hidden=[16, 16]), 0.01, cfg, 0)
            for arm in ("galore", "adam")}
    for opt in opts.values():
        for group in opt.param_groups:
            for p in group["params"]:
                p.grad = torch.ones_like(p)
        opt.step()
    g, a = opts["galore"], opts["adam"]
    assert isinstance(g, GaLore) and g.state_bytes() > 0.5 * adam_state_bytes(a)


@pytest.mark.slow
def test_full_preset_is_inconclusive_where_every_optimizer_converges(tmp_path):
    # measured (docs/studies/S-galore.md): after 1200 steps every optimizer is near zero training loss and the
    # random projection passes the margin check in GaLore's place (a defect): the margin no longer tells
    # GaLore's gradient subspace from a random one
    full = run_study(ID, preset="full", root=tmp_path)
    assert full.status == "inconclusive" and "study defect" in full.reason
    assert all(g.passed for g in full.preconditions)
    ctrl = {c.name: c for c in full.checks}["loss_gap_to_adam"].controls[0]
    assert ctrl.arm == "random_projection" and ctrl.passed is True
