"""The study contract's judgement: intervals against thresholds, nulls, controls, gates, one seed."""


import math

import numpy as np
import pytest
from pydantic import Field
from scipy import stats

from neumo.config import StrictModel
from neumo.stats import spearman_permutation, t_interval
from neumo.studies.base import CheckSpec, Estimate, GateSpec, Measurement, Study, Thresholds
from neumo.studies.judge import interval_decision, judge_units


class _Thr(Thresholds):
    low: float = Field(0.5, description="test threshold")
    acc: float = Field(0.9, description="test gate")


class _Cfg(StrictModel):
    thresholds: _Thr = _Thr()


class _Fake(Study):
    id = "fake"
    instrument = "foundation"
    claim = "x is low relative to its null"
    Config = _Cfg
    nulls = {"shuffled": "the null arm", "walk": "an inline null"}

    def checks(self, cfg):
        return [CheckSpec("ratio", "x", "<=", "low", null="walk", controls=("shuffled",))]

    def preconditions(self, cfg):
        return [GateSpec("acc", "acc", ">=", "acc")]

    def measure(self, cfg, ctx):  # never called: these tests judge hand-made units
        raise AssertionError


def _units(xs, walks, shuffled, accs):
    return [{"treatment": Measurement({"x": x, "acc": a}, nulls={"walk": {"x": w}}),
             "shuffled": Measurement({"x": s, "acc": 0.1})} for x, w, s, a in zip(xs, walks, shuffled, accs)]


def test_t_interval_matches_scipy_and_refuses_one_point():
    v = [0.2, 0.4, 0.35, 0.5]
    m, lo, hi = t_interval(v)
    ref = stats.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=stats.sem(v))
    assert (lo, hi) == pytest.approx(ref) and m == pytest.approx(np.mean(v))
    assert t_interval([0.3])[1:] == (None, None)
    assert t_interval([0.3, float("nan"), 0.5])[0] == pytest.approx(0.4)


def test_interval_decision_is_three_valued():
    assert interval_decision(">=", 0.96, 0.99, 0.95) is True
    assert interval_decision(">=", 0.80, 0.94, 0.95) is False
    assert interval_decision(">=", 0.90, 0.99, 0.95) is None
    assert interval_decision("<", 0.1, 0.2, 0.2) is None and interval_decision("<", 0.1, 0.19, 0.2) is True
    assert interval_decision("<=", 0.3, 0.4, 0.2) is False and interval_decision(">", 0.2, 0.3, 0.3) is False
    assert interval_decision(">=", None, None, 0.0) is None


def test_ratio_to_null_holds_only_when_the_interval_clears():
    cfg = _Cfg()
    v = judge_units(_Fake(), cfg, _units([1.0, 1.1, 0.9], [4.0, 4.0, 4.0], [4.0, 4.2, 3.9], [0.95] * 3), [0, 1, 2])
    (c,) = v.checks
    assert c.per_seed == pytest.approx([0.25, 0.275, 0.225]) and c.null_mean == pytest.approx(4.0)
    assert c.passed is True and v.status == "holds" and v.seeds == [0, 1, 2]
    assert c.controls[0].arm == "shuffled" and c.controls[0].passed is False   # 4/4 = 1 is not low
    assert v.measured["walk:x"] == pytest.approx(4.0) and v.measured["shuffled:x"] == pytest.approx(4.033, abs=1e-3)
    # the same numbers straddling the threshold: undecided, so inconclusive
    v = judge_units(_Fake(), cfg, _units([1.0, 2.6, 1.5], [4.0] * 3, [4.0] * 3, [0.95] * 3), [0, 1, 2])
    assert v.checks[0].passed is None and v.status == "inconclusive" and "straddles" in v.reason
    # wholly on the wrong side: fails
    v = judge_units(_Fake(), cfg, _units([3.0, 3.2, 2.9], [4.0] * 3, [4.0] * 3, [0.95] * 3), [0, 1, 2])
    assert v.status == "fails" and "wholly outside" in v.reason


def test_a_control_that_passes_is_a_defect_not_support():
    v = judge_units(_Fake(), _Cfg(), _units([1.0, 1.1, 0.9], [4.0] * 3, [1.0, 1.05, 0.95], [0.95] * 3), [0, 1, 2])
    assert v.checks[0].passed is True
    assert v.status == "inconclusive" and v.defects and "null 'shuffled' passes check ratio" in v.reason


def test_failed_gate_is_inconclusive_with_the_reason_in_words():
    v = judge_units(_Fake(), _Cfg(), _units([1.0, 1.1, 0.9], [4.0] * 3, [4.0] * 3, [0.95, 0.5, 0.97]), [0, 1, 2])
    (g,) = v.preconditions
    assert not g.passed and g.value == pytest.approx(0.5)
    assert v.status == "inconclusive" and v.reason.startswith("precondition failed: acc = 0.5")


def test_one_seed_gives_no_interval():
    v = judge_units(_Fake(), _Cfg(), _units([1.0], [4.0], [4.0], [0.95]), [0])
    assert v.checks[0].ci_low is None and v.status == "inconclusive" and "--seeds 2" in v.reason


def test_null_in_the_treatments_place_is_rejudged():
    units = _units([1.0, 1.1, 0.9], [4.0] * 3, [4.0, 4.2, 3.9], [0.95] * 3)
    v = judge_units(_Fake(), _Cfg(), units, [0, 1, 2], treatment="shuffled")
    assert v.status != "holds"       # the null's own gate (acc 0.1) fails


def test_pooled_estimates_are_judged_on_their_own_interval():
    class Pooled(_Fake):
        def pool(self, cfg, units):
            return {"x": Estimate(mean=0.3, ci_low=0.1, ci_high=0.45, null_mean=1.0, note="pooled")}

        def checks(self, cfg):
            return [CheckSpec("x_low", "x", "<=", "low")]

    v = judge_units(Pooled(), _Cfg(), _units([9.0, 9.0], [1.0] * 2, [4.0] * 2, [0.95] * 2), [0, 1])
    assert v.checks[0].mean == 0.3 and v.checks[0].passed is True and v.status == "holds"


def test_registry_refuses_unjustified_thresholds_and_undeclared_nulls():
    from neumo.studies.registry import register_study

    class Bare(Thresholds):
        low: float = 0.5

    class BareCfg(StrictModel):
        thresholds: Bare = Bare()

    class Unjustified(_Fake):
        id = "unjustified"
        Config = BareCfg

        def checks(self, cfg):
            return [CheckSpec("x", "x", "<=", "low")]

        def preconditions(self, cfg):
            return []

    with pytest.raises(TypeError, match="needs a one-line justification"):
        register_study(Unjustified)

    class Undeclared(_Fake):
        id = "undeclared"

        def checks(self, cfg):
            return [CheckSpec("x", "x", "<=", "low", null="nope")]

    with pytest.raises(TypeError, match="names null 'nope'"):
        register_study(Undeclared)
    with pytest.raises(ValueError, match="finite"):
        _Thr(low=float("nan"))


def test_spearman_permutation_against_scipy_and_exact_enumeration():
    rng = np.random.default_rng(0)
    x = rng.normal(size=12)
    y = x + rng.normal(scale=0.5, size=12)
    rho, p = spearman_permutation(x, y, n_perm=4000, seed=1)
    ref = stats.spearmanr(x, y)
    assert rho == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue, abs=0.02) and p < 0.05
    # against the exact permutation p-value of 6 points (all 720 orders enumerated)
    from itertools import permutations

    a, b = np.array([0.1, 0.5, 0.2, 0.9, 0.7, 0.3]), np.array([1.0, 2.0, 0.5, 3.0, 1.5, 2.5])
    r0 = stats.spearmanr(a, b).statistic
    exact = np.mean([abs(stats.spearmanr(a, np.array(q)).statistic) >= abs(r0) - 1e-12 for q in permutations(b)])
    rho6, p6 = spearman_permutation(a, b, n_perm=20000, seed=0)
    assert rho6 == pytest.approx(r0) and p6 == pytest.approx(exact, abs=0.015)


def test_a_clean_failure_is_not_hidden_by_a_defect_elsewhere():
    class Two(_Fake):
        def checks(self, cfg):
            return [CheckSpec("ratio", "x", "<=", "low", null="walk", controls=("shuffled",)),
                    CheckSpec("x_low", "x", "<=", "low")]

    # ratio: treatment passes but so does the shuffled control (a defect); x_low fails outright
    v = judge_units(Two(), _Cfg(), _units([1.0, 1.1, 0.9], [4.0] * 3, [1.0, 1.05, 0.95], [0.95] * 3), [0, 1, 2])
    assert v.status == "fails" and v.defects and "also a study defect" in v.reason


def test_rank_correlations_against_scipy():
    from neumo.stats import partial_spearman, spearman

    rng = np.random.default_rng(3)
    x, y, z = rng.normal(size=(3, 40))
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert math.isnan(spearman(x, np.ones(40)))
    # the residual form equals the classical partial-correlation formula on the rank correlations
    r = lambda a, b: stats.spearmanr(a, b).statistic  # noqa: E731
    ref = (r(x, y) - r(x, z) * r(y, z)) / math.sqrt((1 - r(x, z) ** 2) * (1 - r(y, z) ** 2))
    assert partial_spearman(x, y, z) == pytest.approx(ref, abs=1e-12)


def test_pooled_controls_are_judged_on_the_studys_pooled_interval():
    class PooledNull(_Fake):
        def pool(self, cfg, units):
            return {"x": Estimate(mean=0.3, ci_low=0.1, ci_high=0.45),
                    "shuffled:x": Estimate(mean=0.2, ci_low=0.1, ci_high=0.3)}

        def checks(self, cfg):
            return [CheckSpec("x_low", "x", "<=", "low", controls=("shuffled",))]

    units = _units([9.0, 9.0], [1.0] * 2, [9.0] * 2, [0.95] * 2)   # per-seed values would say otherwise
    v = judge_units(PooledNull(), _Cfg(), units, [0, 1])
    (c,) = v.checks
    assert c.controls[0].mean == 0.2 and c.controls[0].passed is True
    assert v.status == "inconclusive" and "null 'shuffled' passes check x_low" in v.reason
    # re-judged with the null as the treatment, its pooled estimate is used, not the treatment's
    again = judge_units(PooledNull(), _Cfg(), units, [0, 1], treatment="shuffled")
    assert again.checks[0].mean == 0.2
