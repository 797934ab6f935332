"""S-zero-cost-proxies: the quick verdict (SynFlow does not rank this population), the random score in the
treatment's place, an untrained population, and the pinned population and rank statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from neumo.stats import spearman
from neumo.studies.judge import judge_units
from neumo.studies.runner import load_units, resolve_config, run_study
from neumo.studies.spectral_zero_cost_proxies import ZeroCostProxies, population, rank_scores

ID = "S-zero-cost-proxies"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study(ID, preset="quick", root=tmp_path_factory.mktemp("zero_cost"))


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_quick_preset_fails_synflow_while_the_ntk_rank_and_the_learning_rate_rank(quick):
    v = quick
    assert v.status == "fails" and "synflow_rho" in v.reason, v.reason
    assert all(g.passed for g in v.preconditions)
    m = v.measured
    assert m["n_configs"] == 32
    assert m["rho_synflow"] < 0.1                       # measured -0.16: deeper/wider nets score higher, train slower
    assert m["rho_log_lr"] > 0.6                        # the learning rate, invisible at init, dominates
    assert m["rho_ntk_erank"] > 0.3 and m["partial_rho_ntk_erank"] > m["rho_ntk_erank"]
    assert abs(m["random_score:rho_synflow"]) < 0.4
    assert all(c.passed is not True for r in v.checks for c in r.controls)
    assert len(v.tables["population"]) == 3 * 32 and v.figures


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_random_score_in_the_treatments_place_does_not_hold(quick):
    cfg = resolve_config(ZeroCostProxies, "quick")
    units, seeds = load_units(quick.run_dir)
    assert judge_units(ZeroCostProxies(), cfg, units, seeds, treatment="random_score").status != "holds"


def test_an_untrained_population_is_not_judged(tmp_path):
    v = run_study(ID, preset="quick", seeds=2, root=tmp_path, overrides=["n_configs=6", "steps=1", "n_perm=50"])
    assert v.status == "inconclusive" and "precondition failed" in v.reason


def test_population_is_pinned_and_covers_the_grid():
    pop = population(32)
    assert pop == population(32) and population(40)[:32] == pop
    assert {c["activation"] for c in pop} == {"relu", "tanh"} and {c["depth"] for c in pop} == {1, 2, 3}
    assert all(10 ** -2.5 <= c["lr"] <= 10 ** -0.3 for c in pop)


def test_rank_scores_on_a_planted_ranking():
    rows = [{"test_acc": a, "lr": 0.1} for a in np.linspace(0.2, 0.9, 12)]
    acc = [r["test_acc"] for r in rows]
    out = rank_scores(rows, {"good": acc, "bad": acc[::-1], "holey": [math.nan] * 3 + acc[3:]}, 200, 0)
    assert out["rho_good"] == pytest.approx(1.0) and out["rho_bad"] == pytest.approx(-1.0)
    assert out["p_good"] <= 0.01 and out["rho_holey"] == pytest.approx(spearman(acc[3:], acc[3:]))
    assert out["partial_rho_good"] == pytest.approx(1.0)   # a constant learning rate partials out nothing


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study(ID, preset="full", root=tmp_path)
    assert full.status == quick.status, full.reason
