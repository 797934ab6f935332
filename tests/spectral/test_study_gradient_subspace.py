"""S-gradient-subspace under the study contract: three seeds, a measured random-subspace null, two learning
rates and a Lanczos-convergence gate."""

from pathlib import Path

import pytest
import torch

from neumo.spectral.curvature import gradient_fraction
from neumo.studies.judge import judge_units
from neumo.studies.registry import get_study
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.studies.spectral_gradient_subspace import NULL, random_basis

SID = "S-gradient-subspace"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(SID, preset="quick", root=tmp_path_factory.mktemp("runs"))


def test_quick_preset_verdict(quick):
    v = quick
    assert v.seeds == [0, 1, 2] and all(g.passed for g in v.preconditions)  # every Lanczos run converged
    by = {c.name: c for c in v.checks}
    for lr in ("0.05", "0.1"):
        # most of the gradient is in the top-10 eigenspace, >2 orders of magnitude above a random 10-subspace
        assert by[f"gradient_fraction@lr{lr}"].passed is True
        assert by[f"gradient_fraction@lr{lr}"].controls[0].passed is False
        assert by[f"log10_fraction_over_random@lr{lr}"].passed is True
        assert by[f"log10_fraction_over_random@lr{lr}"].ci_low > 2.0
        # Dom-SGD turns its ~80% gradient share into ~nothing; Rand-SGD turns its 0.3% into more progress
        assert by[f"dom_efficiency_over_random@lr{lr}"].passed is True
        assert abs(by[f"dom_efficiency_over_random@lr{lr}"].mean) < 0.05
        assert by[f"bulk_progress@lr{lr}"].passed is True
        # measured: Dom-SGD makes no progress (|mean| < 0.05 of SGD's) while Bulk-SGD makes all of it
        assert by[f"dom_progress@lr{lr}"].passed is True and abs(by[f"dom_progress@lr{lr}"].mean) < 0.05
        assert by[f"bulk_progress@lr{lr}"].mean == pytest.approx(1.0, abs=0.1)
    assert v.status == "holds"
    assert v.measured[f"{NULL}:gradient_fraction@lr0.1"] == pytest.approx(10 / v.measured["n_params"], rel=0.3)
    assert v.figures and all(Path(v.run_dir, f).is_file() for f in v.figures)


def test_the_random_subspace_in_the_treatments_place_does_not_hold(quick):
    study = get_study(SID)
    units, seeds = load_units(quick.run_dir)
    assert seeds == [0, 1, 2] and set(units[0]) == {"treatment"} and NULL in units[0]["treatment"].nulls
    broken = judge_units(study(), resolve_config(study, "quick"), units, seeds, treatment=NULL)
    assert broken.status != "holds"  # inconclusive: the random arm ran no Lanczos (its gate has no value)
    assert any(c.name.startswith("gradient_fraction") and c.passed is False for c in broken.checks)


def test_unconverged_lanczos_is_inconclusive(tmp_path):
    v = run_study(SID, overrides=["max_iter=12", "warmup_time=3", "ablation_time=3", "lrs=[0.1]"], seeds=2,
                  root=tmp_path)
    assert v.status == "inconclusive" and "precondition failed: lanczos_converged" in v.reason


def test_random_subspace_fraction_is_k_over_p_on_average():
    """The identity the old check judged: E ||P g||^2 / ||g||^2 = k / P for a uniformly random k-subspace."""
    g = torch.randn(400, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fr = [gradient_fraction(g, random_basis(400, 8, 0, i)) for i in range(400)]
    assert sum(fr) / len(fr) == pytest.approx(8 / 400, rel=0.1)


def test_top_and_bulk_shares_sum_to_one():
    g = torch.randn(50, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    V = random_basis(50, 5, 3)
    assert torch.allclose(V.T @ V, torch.eye(5, dtype=torch.float64), atol=1e-12)
    bulk = g - V @ (V.T @ g)
    assert gradient_fraction(g, V) + float(bulk @ bulk / (g @ g)) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(SID, preset="full", root=tmp_path)
    assert full.status == quick.status, full.reason
