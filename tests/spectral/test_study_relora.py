"""S-relora under the study contract: three seeds, one LoRA, a LoRA with ReLoRA's resets but no merges and
full fine-tuning inline, each with its own learning-rate sweep."""

import pytest
import torch

from neumo.spectral.ranks import matrix_ranks
from neumo.studies.judge import judge_units
from neumo.studies.registry import get_study
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.studies.spectral_relora import piece_overlap

ID = "S-relora"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(ID, preset="quick", root=tmp_path_factory.mktemp("runs"))


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_quick_preset_holds_the_accumulated_update_exceeds_rank_r(quick):
    v = quick
    assert v.seeds == [0, 1, 2] and all(g.passed for g in v.preconditions), v.reason
    by = {c.name: c for c in v.checks}
    assert v.status == "holds", v.reason
    # measured: 5 pieces of rank 2 give entropy ranks ~8 (first layer), LoRA's stays <= 2
    assert by["erank_over_rank"].ci_low > 2.0 and v.measured["n_pieces"] == 5
    assert v.measured["lora:min_erank_over_rank"] <= 1.0 + 1e-9
    assert v.measured["lora_resets:min_erank_over_rank"] <= 1.0 + 1e-9
    # ReLoRA ends ~100x below LoRA; the resets alone (no merges) do not pass in its place
    assert by["loss_over_lora"].mean < 0.1
    assert all(c.passed is not True for r in v.checks for c in r.controls)
    assert v.measured["final_loss"] < v.measured["lora_resets:final_loss"]
    # consecutive pieces are close to orthogonal (a few times the chance overlap r / 64 at most)
    assert v.measured["piece_overlap_first_layer"] < 5 * v.measured["piece_overlap_chance"]
    assert v.figures


@pytest.mark.parametrize("arm", ["lora", "lora_resets"])
@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_a_null_in_the_treatments_place_does_not_hold(quick, arm):
    study = get_study(ID)
    units, seeds = load_units(quick.run_dir)
    assert set(units[0]) == {"treatment"}
    broken = judge_units(study(), resolve_config(study, "quick"), units, seeds, treatment=arm)
    assert broken.status != "holds"
    assert {c.name: c for c in broken.checks}["erank_over_rank"].passed is not True   # its ratio is <= 1


def test_relora_without_restarts_does_not_hold(tmp_path):
    # every > steps: no merge ever happens, ReLoRA is one LoRA and its update has rank <= r
    v = run_study(ID, overrides=["every=1000", "lrs=[0.01,0.03,0.1]", "n_finetune=256", "steps=120"], seeds=2,
                  root=tmp_path)
    assert v.status != "holds"
    assert {c.name: c for c in v.checks}["erank_over_rank"].passed is not True


def test_piece_overlap_is_one_for_the_same_subspace_and_zero_for_orthogonal_ones():
    e = torch.eye(6, dtype=torch.float64)
    a = e[:, :2] @ torch.randn(2, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    b = e[:, 2:4] @ torch.randn(2, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert piece_overlap([a, 3 * a], 2) == pytest.approx(1.0)
    assert piece_overlap([a, b], 2) == pytest.approx(0.0, abs=1e-12)
    assert piece_overlap([a, b, a], 2) == pytest.approx(0.0, abs=1e-12)


def test_a_rank_r_matrix_has_entropy_rank_at_most_r():
    g = torch.Generator().manual_seed(0)
    for r in (1, 2, 4):
        w = torch.randn(30, r, generator=g, dtype=torch.float64) @ torch.randn(r, 20, generator=g, dtype=torch.float64)
        assert matrix_ranks(w)["entropy_rank"] <= r + 1e-9


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(ID, preset="full", root=tmp_path)
    assert full.status == quick.status, full.reason
