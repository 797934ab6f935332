"""S-hessian-outliers: the quick preset's verdict, the untrained null in the treatment's place, an
under-trained run, and the SLQ bulk edge on planted spectra (where the outlier count is known)."""

from __future__ import annotations

import pytest
import torch

from neumo.spectral.curvature import MatrixOperator, lanczos, slq
from neumo.studies.judge import judge_units
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.studies.spectral_hessian_outliers import HessianOutliers, bulk_edge, count_outliers

ID = "S-hessian-outliers"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(ID, preset="quick", root=tmp_path_factory.mktemp("outliers"))


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_quick_preset_fails_on_mse_and_is_undecided_on_cross_entropy(quick):
    v = quick
    assert v.status == "fails", v.reason
    assert all(g.passed for g in v.preconditions)
    checks = {c.name: c for c in v.checks}
    ce, mse = checks["ce_expected_count_fraction"], checks["mse_expected_count_fraction"]
    assert mse.passed is False and mse.mean < 0.4
    assert ce.passed is None and 0.3 <= ce.mean <= 0.9
    for c in (ce, mse):  # the untrained control never passes
        assert all(r.passed is not True for r in c.controls)
    m = v.measured
    assert m["ce_C10_frac"] >= 0.6          # C - 1 = 9 outliers at most checkpoints for C = 10
    assert m["mse_C5_mean_outliers"] > 7    # with MSE at C = 5 far more than C eigenvalues leave the bulk
    assert m["untrained:ce_C10_frac"] <= 1 / 3
    assert v.figures


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_untrained_in_the_treatments_place_does_not_hold(quick):
    cfg = resolve_config(HessianOutliers, "quick")
    units, seeds = load_units(quick.run_dir)
    assert judge_units(HessianOutliers(), cfg, units, seeds, treatment="untrained").status != "holds"


def test_an_under_trained_network_is_not_judged(tmp_path):
    v = run_study(ID, preset="quick", seeds=2, root=tmp_path,
                  overrides=["steps=20", "checkpoints=1", "slq_probes=2", "slq_steps=20", "n_hessian=200"])
    assert v.status == "inconclusive" and "train_acc" in v.reason


def _planted(n_bulk: int, spikes: list[float], seed: int = 0) -> MatrixOperator:
    g = torch.Generator().manual_seed(seed)
    bulk = torch.rand(n_bulk, generator=g, dtype=torch.float64) ** 2  # a bulk on [0, 1], dense near 0
    lam = torch.cat([bulk, torch.tensor(spikes, dtype=torch.float64)])
    q, _ = torch.linalg.qr(torch.randn(len(lam), len(lam), generator=g, dtype=torch.float64))
    return MatrixOperator(q @ torch.diag(lam) @ q.T)


@pytest.mark.parametrize("spikes", [[3.0, 4.0, 5.0, 6.0, 7.0], [2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0]])
def test_bulk_edge_counts_planted_spikes(spikes):
    op = _planted(600, spikes)
    top = lanczos(op, k=len(spikes) + 6, tol=1e-8, seed=0)
    edge = bulk_edge(slq(op, n_probes=4, steps=40, seed=0), float(top.eigenvalues[0]), op.size)
    assert 0.5 < edge < min(spikes)
    assert count_outliers(top.eigenvalues, edge) == len(spikes)


def test_bulk_edge_counts_no_outliers_in_a_pure_bulk():
    op = _planted(600, [])
    top = lanczos(op, k=10, tol=1e-8, seed=0)
    edge = bulk_edge(slq(op, n_probes=4, steps=40, seed=0), float(top.eigenvalues[0]), op.size)
    assert count_outliers(top.eigenvalues, edge) <= 2  # at most the bulk's own top eigenvalues


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(ID, preset="full", root=tmp_path)
    assert full.status == quick.status, full.reason
