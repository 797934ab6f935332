"""S-long-tail: the pooled statistics, the frequency bands, the scorer's one-pass statistics, the quick
verdict, the uniform-style null in the treatment's place, and (slow) the full preset's verdict, which must
equal the quick one."""

from __future__ import annotations

import numpy as np
import pytest

from neumo.detect.corpus import HierarchicalLanguage, LanguageConfig
from neumo.studies.detect_long_tail import (UNIFORM, LongTail, _bands, continuation_stats, excess_loss, ngram_on_ids,
                                            one_sided_negative_p, slope)
from neumo.studies.judge import judge_units
from neumo.studies.runner import load_units, resolve_config, run_study


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return run_study("S-long-tail", preset="quick", root=tmp_path_factory.mktemp("long_tail"))


def test_long_tail_bands_partition_the_text():
    rows = [{"weight": w, "auroc": a, "kl_per_token": 0.1} for w, a in ((0.89, 0.5), (0.07, 0.7), (0.03, 0.8),
                                                                       (0.005, 0.9), (0.005, 1.0))]
    b = _bands(rows, [0.01, 0.1])
    assert [x["n_styles"] for x in b] == [2, 2, 1]
    assert sum(x["share_of_text"] for x in b) == pytest.approx(1.0)
    assert b[0]["mean_auroc"] == pytest.approx(0.95)


def test_one_sided_p_and_slope():
    x = np.arange(12.0)
    rho, p = one_sided_negative_p(x, -x, n_perm=500)
    assert rho == pytest.approx(-1.0) and p < 0.01
    rho, p = one_sided_negative_p(x, x, n_perm=500)
    assert rho == pytest.approx(1.0) and p > 0.99
    assert slope(x, 3 - 0.5 * x) == pytest.approx(-0.5)
    assert np.isnan(slope(np.ones(4), x[:4]))


def test_continuation_stats_equal_score_ids_and_excess_loss_falls_with_data():
    from neumo.detect.score import score_ids

    lang = HierarchicalLanguage.build(LanguageConfig(), 0)
    train, _ = lang.sample(3000, 20, seed=0)
    lm = ngram_on_ids(list(train), lang.vocab_size, 3)
    h, _ = lang.sample(7, 20, seed=5)
    for a, b in zip(continuation_stats(lm, h, 8), [s.tail(8) for s in score_ids(lm, [list(x) for x in h])]):
        for k in ("logprob", "rank", "entropy", "var", "in_top_p"):
            np.testing.assert_allclose(getattr(a, k), getattr(b, k), atol=1e-5)
    test, _ = lang.sample(200, 20, seed=9)
    weak = ngram_on_ids(list(train[:10]), lang.vocab_size, 3)
    assert 0 < excess_loss(lang, lm, test) < excess_loss(lang, weak, test)


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_quick_holds(quick):
    v = quick
    # measured: Spearman -0.28 [-0.48, -0.07] over 93 pooled styles (p = 0.004); within the chat styles AUROC
    # falls by 0.006 [0.001, 0.012] per e-fold of training documents: small, near the AUROC ceiling
    assert v.status == "holds", v.reason
    assert len(v.seeds) == 3 and all(g.passed for g in v.preconditions)
    c = {x.name: x for x in v.checks}
    assert -0.45 < c["spearman_frequency_auroc"].mean < -0.1
    assert c["perm_p_frequency_auroc"].mean < 0.02
    assert -0.02 < c["rare_slope_auroc_log_docs"].mean < 0
    assert all(ctrl.passed is not True for x in v.checks for ctrl in x.controls)   # the null shows no effect
    assert c["spearman_frequency_auroc"].null_mean > 0
    assert "93 styles" in c["spearman_frequency_auroc"].note
    assert v.measured["auroc_chat_mean"] > v.measured["auroc_formal"] + 0.2
    assert v.measured["kl_chat_mean"] > v.measured["kl_formal"]
    assert v.measured["share_formal"] == pytest.approx(0.9)


@pytest.mark.slow  # runs the quick preset: slow tier (README, Tests)
def test_the_uniform_null_in_the_treatments_place_does_not_hold(quick):
    units, seeds = load_units(quick.run_dir)
    cfg = resolve_config(LongTail, "quick")
    v = judge_units(LongTail(), cfg, units, seeds, treatment=UNIFORM)
    assert v.status != "holds"
    assert {c.name: c.passed for c in v.checks}["perm_p_frequency_auroc"] is not True


@pytest.mark.slow
def test_full_preset_agrees_with_quick(quick, tmp_path):
    full = run_study("S-long-tail", preset="full", root=tmp_path)
    assert len(full.seeds) == 5
    assert full.status == quick.status, full.reason
