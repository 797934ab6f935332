import itertools

import numpy as np
import pytest
import torch

from neumo.detect.corpus import HierarchicalLanguage, LanguageConfig
from neumo.detect.sampling import generate, transform_logits

CFG = LanguageConfig(vocab_size=5, n_states=3, n_chat_styles=3, head_weight=0.7)


def test_exact_p_sums_to_one_over_all_short_sequences():
    lang = HierarchicalLanguage.build(CFG, seed=0)
    seqs = np.array(list(itertools.product(range(5), repeat=3)))
    assert np.exp(lang.log_prob(seqs)).sum() == pytest.approx(1.0, abs=1e-12)
    p = lang.next_token_probs(seqs)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-12)


def test_exact_p_matches_monte_carlo_frequencies():
    lang = HierarchicalLanguage.build(CFG, seed=1)
    ids, styles = lang.sample(40000, 2, seed=2)
    seqs = np.array(list(itertools.product(range(5), repeat=2)))
    exact = np.exp(lang.log_prob(seqs))
    freq = np.array([np.mean((ids[:, 0] == a) & (ids[:, 1] == b)) for a, b in seqs])
    se = np.sqrt(exact * (1 - exact) / len(ids))
    assert np.all(np.abs(freq - exact) < 5 * se + 1e-4)
    np.testing.assert_allclose(np.bincount(styles, minlength=4) / len(ids), lang.weights, atol=0.01)


def test_style_weights_long_tailed_and_deterministic():
    a = HierarchicalLanguage.build(CFG, seed=3)
    b = HierarchicalLanguage.build(CFG, seed=3)
    np.testing.assert_array_equal(a.emissions, b.emissions)
    assert a.weights[0] == pytest.approx(0.7) and a.weights.sum() == pytest.approx(1.0)
    assert np.all(np.diff(a.weights[1:]) < 0)
    np.testing.assert_array_equal(a.sample(5, 4, seed=1)[0], a.sample(5, 4, seed=1)[0])


def test_power_equals_inverse_temperature_and_truncation():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 20, generator=g, dtype=torch.float64)
    torch.testing.assert_close(transform_logits(logits, alpha=2.0), transform_logits(logits, temperature=0.5))
    q = torch.softmax(logits, -1)
    lt = transform_logits(logits, top_p=0.6)
    for row in range(3):
        qs, order = q[row].sort(descending=True)
        keep = int((qs.cumsum(0) - qs < 0.6).sum())
        kept = set(order[:keep].tolist())
        assert {i for i in range(20) if torch.isfinite(lt[row, i])} == kept
    assert int(torch.isfinite(transform_logits(logits, top_k=4)).sum(-1)[0]) == 4


def test_generate_is_seeded(ngram_lm):
    ids, _ = ngram_lm.encode("The ")
    a = generate(ngram_lm, [ids, ids], 10, seed=3, temperature=0.8)
    assert a == generate(ngram_lm, [ids, ids], 10, seed=3, temperature=0.8)
    assert all(len(r) == len(ids) + 10 and r[:len(ids)] == ids for r in a)
