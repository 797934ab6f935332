import pytest
import torch

from neumo.detect.bottleneck import (centred, fit_softmax, mos_targets, parallelogram_defect,
                                     parallelogram_violations)
from neumo.nn import build_model
from neumo.spectral.ranks import energy_rank


def test_transformer_logprob_rank_at_most_d_plus_1():
    d, v = 8, 40
    m = build_model("transformer", seed=0, vocab_size=v, d_model=d, n_layers=1, n_heads=2, max_len=16)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, v, (200, 12), generator=g)
    with torch.no_grad():
        lp = torch.log_softmax(m(ids)[:, -1].double(), -1)                    # (200, 40)
    s = torch.linalg.svdvals(lp)
    assert energy_rank(s, 1e-12) <= d + 1
    assert energy_rank(torch.linalg.svdvals(centred(lp)), 1e-12) <= d      # no output bias: centred rank <= d
    full = torch.log_softmax(torch.randn(200, v, generator=g, dtype=torch.float64), -1)
    assert energy_rank(torch.linalg.svdvals(centred(full)), 1e-12) == v - 1


def test_mos_targets_are_high_rank_and_mos_beats_softmax():
    t = mos_targets(48, 24, 3, 3, 3.0, seed=0)
    assert torch.allclose(t.exp().sum(-1), torch.ones(48, dtype=torch.float64))
    assert energy_rank(torch.linalg.svdvals(centred(t)), 1e-12) > 3 + 1
    soft = fit_softmax(t, 3, 300, 0.05, seed=0)
    mos = fit_softmax(t, 3, 300, 0.05, seed=0, n_mix=3)
    assert soft > 0.01 and mos < 0.5 * soft


def test_softmax_fits_a_rank_d_target_exactly():
    g = torch.Generator().manual_seed(1)
    t = torch.log_softmax(torch.randn(30, 3, generator=g, dtype=torch.float64) @
                          torch.randn(3, 12, generator=g, dtype=torch.float64), -1)
    assert fit_softmax(t, 3, 1500, 0.05, seed=0) < 1e-3


def test_parallelogram_rules_out_joint_ranking():
    g = torch.Generator().manual_seed(2)
    e = torch.randn(4, 6, generator=g, dtype=torch.float64)
    e[0] = e[2] + e[3] - e[1]
    h = torch.randn(50000, 6, generator=g, dtype=torch.float64)
    assert parallelogram_violations(e, h) == 0.0
    assert parallelogram_defect(e) == pytest.approx(0.0, abs=1e-12)
    e[0] += torch.randn(6, generator=g, dtype=torch.float64)
    assert parallelogram_violations(e, h) > 0.0
