"""S-gradient-norms: the quick preset's verdict, the Gaussian null in the treatment's place, an under-trained
run, and the closed forms behind the null (nuclear rank, random-matrix exponents, log-log slope)."""

from __future__ import annotations

import pytest
import torch

from neumo.ranks import nuclear_rank
from neumo.studies.judge import judge_units
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.studies.spectral_gradient_norms import GradientNorms, loglog_slope, norm_ratios

ID = "S-gradient-norms"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(ID, preset="quick", root=tmp_path_factory.mktemp("gradnorms"))


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_quick_preset_holds_and_the_random_null_grows(quick):
    v = quick
    assert v.seeds == [0, 1, 2] and all(g.passed for g in v.preconditions), v.reason
    assert v.status == "holds", v.reason
    by = {c.name: c for c in v.checks}
    for point in ("init", "trained"):
        nuc, fro = by[f"nuclear_slope_{point}"], by[f"frobenius_slope_{point}"]
        assert nuc.passed is True and abs(nuc.mean) < 0.2 and fro.passed is True and abs(fro.mean) < 0.1
        # the random matrix follows its exponents (1 and 1/2) and never passes
        assert nuc.controls[0].mean == pytest.approx(1.0, abs=0.05) and nuc.controls[0].passed is False
        assert fro.controls[0].mean == pytest.approx(0.5, abs=0.05) and fro.controls[0].passed is False
    m = v.measured
    assert m["nuclear_trained_at_max_width"] < 3 and m["random_matrix:nuclear_trained_at_max_width"] > 150
    assert 0.0 < m["nuclear_slope_init_shuffled"] < 0.5   # reported: permuted labels are concentrated too
    assert v.figures


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_the_random_matrix_in_the_treatments_place_does_not_hold(quick):
    cfg = resolve_config(GradientNorms, "quick")
    units, seeds = load_units(quick.run_dir)
    broken = judge_units(GradientNorms(), cfg, units, seeds, treatment="random_matrix")
    assert broken.status != "holds"  # inconclusive: the inline null has no train accuracy for the gate
    assert all(c.passed is False for c in broken.checks)  # and every slope lies wholly above its threshold


def test_an_under_trained_network_is_not_judged(tmp_path):
    v = run_study(ID, preset="quick", seeds=2, root=tmp_path, overrides=["steps=3", "widths=[32,64]"])
    assert v.status == "inconclusive" and "train_acc" in v.reason


def test_nuclear_rank_is_an_effective_rank():
    assert nuclear_rank(torch.ones(7)) == pytest.approx(7.0)
    assert nuclear_rank([3.0, 0.0, 0.0]) == pytest.approx(1.0)
    assert nuclear_rank([0.0, 0.0]) == 0.0
    s = torch.tensor([4.0, 2.0, 1.0, 0.5])
    assert nuclear_rank(s) == pytest.approx(7.5 / 4) == pytest.approx(nuclear_rank(1e-9 * s))
    a = torch.randn(6, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert nuclear_rank(torch.linalg.svdvals(a)) == pytest.approx(
        float(torch.linalg.matrix_norm(a, "nuc") / torch.linalg.matrix_norm(a, 2)))


def test_loglog_slope_recovers_a_power_law():
    w = [32, 64, 128, 256]
    assert loglog_slope(w, [3.0 * x ** 0.7 for x in w]) == pytest.approx(0.7)


def test_gaussian_square_matrices_follow_the_quarter_circle_exponents():
    g = torch.Generator().manual_seed(1)
    widths = [32, 64, 128, 256, 512]
    ratios = [norm_ratios(torch.randn(n, n, generator=g, dtype=torch.float64)) for n in widths]
    assert loglog_slope(widths, [r["nuclear"] for r in ratios]) == pytest.approx(1.0, abs=0.04)
    assert loglog_slope(widths, [r["frobenius"] for r in ratios]) == pytest.approx(0.5, abs=0.04)
    # quarter-circle constants: nuclear / spectral -> (8 / 3 pi) n^1.5 / (2 sqrt n) = 4 n / (3 pi)
    assert ratios[-1]["nuclear"] == pytest.approx(4 * 512 / (3 * torch.pi), rel=0.05)
    assert ratios[-1]["frobenius"] == pytest.approx(512 ** 0.5 / 2, rel=0.05)
    # a rank-one matrix plus small noise stays bounded: slope ~ 0
    rank_one = [norm_ratios(torch.outer(torch.ones(n), torch.ones(n)) * n ** -1.0 +
                            1e-4 * torch.randn(n, n, generator=g, dtype=torch.float64) / n) for n in widths]
    assert abs(loglog_slope(widths, [r["nuclear"] for r in rank_one])) < 0.1


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(ID, preset="full", root=tmp_path)
    assert full.status == quick.status, full.reason
