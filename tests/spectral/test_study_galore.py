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


# The per-seed losses move with the CPU's rounding (docs/studies/S-galore.md): measured on the quick preset
# with torch's AVX2 kernels 0.029 [-0.010, 0.068] (straddles the 0.05 margin), with its AVX-512 kernels
# 0.0247 [0.0022, 0.0472] (2026-12-04; per seed 0.0172, 0.0348, 0.0221). Pinned per kernel family, so a
# change of the study still shows, while a new CPU family skips with its name.
GAP_BY_CPU = {"AVX2": ("inconclusive", 0.0287, -0.010, 0.068), "AVX512": ("holds", 0.0247, 0.0022, 0.0472)}


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_quick_preset_on_the_margin_at_a_sixth_of_the_state(quick):
    cpu = torch.backends.cpu.get_cpu_capability()
    if cpu not in GAP_BY_CPU:
        pytest.skip(f"S-galore's quick loss gap is pinned for {sorted(GAP_BY_CPU)} kernels, not {cpu}")
    status, mean, lo, hi = GAP_BY_CPU[cpu]
    v = quick
    assert v.seeds == [0, 1, 2] and all(g.passed for g in v.preconditions), v.reason
    by = {c.name: c for c in v.checks}
    gap, state = by["loss_gap_to_adam"], by["state_over_adam"]
    assert v.status == status, v.reason
    assert (gap.mean, gap.ci_low, gap.ci_high) == pytest.approx((mean, lo, hi), abs=2e-3)
    assert gap.passed is (True if status == "holds" else None) and 0.0 < gap.mean < 0.05
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
