"""S-ntk-gn-fisher: the quick verdict, the random subspace in the treatment's place, an untrained network,
and the curvature factors against the library's matvec operators on a tiny float64 model."""

from __future__ import annotations

import pytest
import torch

from neumo.nn import build_model
from neumo.spectral.curvature import EmpiricalFisherOperator, GaussNewtonOperator, dense_matrix
from neumo.spectral.subspace import subspace_overlap, top_right_singular_vectors
from neumo.studies.judge import judge_units
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.studies.spectral_ntk_gn_fisher import NTKGNFisher, curvature_factors

ID = "S-ntk-gn-fisher"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(ID, preset="quick", root=tmp_path_factory.mktemp("ntk_gn_fisher"))


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_quick_preset_holds_far_above_a_random_subspace(quick):
    v = quick
    assert v.status == "holds", v.reason
    assert all(g.passed for g in v.preconditions)
    m = v.measured
    assert m["ntk_gn"] > 0.7 and m["gn_fisher"] > 0.7 and m["ntk_fisher"] > 0.55
    for q in ("ntk_gn", "ntk_fisher", "gn_fisher"):
        assert m[f"random_subspace:{q}"] == pytest.approx(m["k_over_P"], rel=0.6)
        assert m[f"init_{q}"] > m[q] - 0.05        # measured: the overlaps are higher at init than trained
    # a random sandwich of the same Jacobian shares as much with the NTK as the true Gauss-Newton does
    assert m["random_sandwich:ntk_gn"] > 0.8
    assert all(c.passed is not True for r in v.checks for c in r.controls)
    assert v.figures


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_random_subspace_in_the_treatments_place_does_not_hold(quick):
    cfg = resolve_config(NTKGNFisher, "quick")
    units, seeds = load_units(quick.run_dir)
    assert judge_units(NTKGNFisher(), cfg, units, seeds, treatment="random_subspace").status != "holds"


def test_an_untrained_network_is_not_judged(tmp_path):
    v = run_study(ID, preset="quick", seeds=2, root=tmp_path, overrides=["steps=2", "n_points=32", "k_report=9"])
    assert v.status == "inconclusive" and "train_acc" in v.reason


def _tiny():
    model = build_model("mlp", seed=0, in_dim=5, out_dim=3, hidden=[4], activation="tanh").double()
    g = torch.Generator().manual_seed(1)
    return model, torch.randn(6, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (6,), generator=g)


def test_factors_match_the_library_operators():
    model, x, y = _tiny()
    f = curvature_factors(model, x, y, seed=0)
    gn = dense_matrix(GaussNewtonOperator(model, x, y, "cross_entropy"))
    torch.testing.assert_close(f["gn"].T @ f["gn"] / x.shape[0], gn)   # the library's loss is a mean over samples
    fisher = dense_matrix(EmpiricalFisherOperator(model, x, y, "cross_entropy"))
    torch.testing.assert_close(f["fisher"].T @ f["fisher"] / x.shape[0], fisher)
    ntk = f["ntk"] @ f["ntk"].T
    from neumo.spectral.proxies import ntk_gram
    torch.testing.assert_close(ntk, ntk_gram(model, x).double())


def test_top_right_singular_vectors_match_the_svd():
    M = torch.randn(12, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lam, V = top_right_singular_vectors(M, 4)
    _, s, vh = torch.linalg.svd(M, full_matrices=False)
    torch.testing.assert_close(lam, s[:4] ** 2)
    torch.testing.assert_close(V.T @ V, torch.eye(4, dtype=torch.float64))
    assert subspace_overlap(V, vh[:4].T) == pytest.approx(1.0)
    with pytest.raises(Exception, match="'k' parameter"):
        top_right_singular_vectors(M, 13)


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(ID, preset="full", root=tmp_path)
    assert full.status == quick.status, full.reason
