import numpy as np
import pytest
import torch

from neumo.detect import detectors as d
from neumo.detect.score import plan_windows, score_ids, score_text, score_texts
from neumo.detect.stats import token_stats
from neumo.errors import NeumoError


def test_token_stats_hand_computed():
    # q = (0.5, 0.25, 0.125, 0.125): hand-computed rank, entropy, variance, top-p membership
    q = torch.tensor([[0.5, 0.25, 0.125, 0.125]] * 4, dtype=torch.float64)
    st = token_stats(q.log(), torch.tensor([0, 1, 2, 3]), top_k=2, top_p=0.7)
    ln2 = np.log(2)
    H = 0.5 * ln2 + 0.25 * 2 * ln2 + 0.25 * 3 * ln2                  # 1.75 ln 2
    E2 = 0.5 * ln2**2 + 0.25 * 4 * ln2**2 + 0.25 * 9 * ln2**2
    assert st["rank"].tolist() == [1, 2, 3, 3]                       # ties share the better rank
    np.testing.assert_allclose(st["logprob"], [-ln2, -2 * ln2, -3 * ln2, -3 * ln2])
    np.testing.assert_allclose(st["entropy"], [H] * 4)
    np.testing.assert_allclose(st["var"], [E2 - H**2] * 4)
    assert st["in_top_k"].tolist() == [True, True, False, False]
    # mass strictly above: 0, 0.5, 0.75, 0.75 -> inside the 0.7 nucleus only for the first two
    assert st["in_top_p"].tolist() == [True, True, False, False]


def test_fast_detectgpt_matches_formula_on_random_logits():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(30, 50, generator=g, dtype=torch.float64) * 3
    x = torch.randint(0, 50, (30,), generator=g)
    lq = torch.log_softmax(logits, -1)
    q = lq.exp()
    mu = (q * lq).sum(-1)
    var = (q * lq**2).sum(-1) - mu**2
    expected = float((lq.gather(-1, x[:, None])[:, 0] - mu).sum() / var.sum().sqrt())
    st = token_stats(logits, x)
    from neumo.detect.score import TokenStats

    s = TokenStats("m", x.numpy(), [""] * 30, st["logprob"].numpy(), st["rank"].numpy(), st["entropy"].numpy(),
                   st["var"].numpy(), st["in_top_k"].numpy(), st["in_top_p"].numpy())
    assert d.fast_detectgpt(s) == pytest.approx(expected, rel=1e-10)
    ranks = (lq > lq.gather(-1, x[:, None])).sum(-1) + 1
    assert d.logrank(s) == pytest.approx(-float(torch.log(ranks.double()).mean()))
    assert d.lrr(s) == pytest.approx(-float(lq.gather(-1, x[:, None]).sum()) / float(torch.log(ranks.double()).sum()))
    assert d.gltr(s) == pytest.approx(float((ranks <= 10).double().mean()))
    b = d.gltr_buckets(s)
    assert sum(b.values()) == pytest.approx(1.0)


def test_score_text_on_table_lm_matches_dense(table_lm):
    s = score_text(table_lm, "abcd")
    ids = [4, 0, 1, 2, 3]
    lq = torch.log_softmax(table_lm.table.double(), -1)
    expected = [float(lq[ids[t], ids[t + 1]]) for t in range(4)]
    np.testing.assert_allclose(s.logprob, expected, rtol=1e-5)
    assert s.pieces == list("abcd") and s.n == 4
    assert d.likelihood(s) == pytest.approx(np.mean(expected), rel=1e-5)


def test_plan_windows_cover_each_target_once():
    for L, W, S in [(10, 10, 5), (11, 10, 5), (37, 8, 3), (100, 16, 16 - 1)]:
        targets = []
        for s, e, first in plan_windows(L, W, S):
            assert e - s <= W and first >= s + 1
            assert first - 1 - s >= 0
            targets += list(range(first, e))
        assert targets == list(range(1, L))
    with pytest.raises(NeumoError, match="stride"):
        plan_windows(20, 8, 8)


def test_windowing_equals_one_pass_when_context_fits(ngram_lm):
    # a 5-gram only looks 4 symbols back, so windows with >= 4 tokens of context give identical stats
    text = "The minister said the fires were under control late on Tuesday night."
    one = score_text(ngram_lm, text)
    win = score_text(ngram_lm, text, window=12, stride=6)
    np.testing.assert_allclose(win.logprob, one.logprob, rtol=1e-6)
    np.testing.assert_array_equal(win.rank, one.rank)
    np.testing.assert_allclose(win.var, one.var, rtol=1e-5, atol=1e-7)


def test_text_that_fits_one_window_is_a_single_pass(table_lm):
    a = score_text(table_lm, "abcabcda")
    b = score_text(table_lm, "abcabcda", window=9, stride=4)       # 8 tokens + start = 9: one window
    np.testing.assert_array_equal(a.logprob, b.logprob)


def test_batching_and_padding_do_not_change_stats(ngram_lm):
    texts = ["Short one.", "A much longer sentence about the bushfires near Sydney.", "Mid length text."]
    together = score_texts(ngram_lm, texts, batch_size=3)
    alone = [score_text(ngram_lm, t) for t in texts]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a.logprob, b.logprob, rtol=1e-6)


def test_empty_and_whitespace_texts_raise(ngram_lm):
    for bad in ["", "   \n\t"]:
        with pytest.raises(NeumoError, match="empty"):
            score_texts(ngram_lm, [bad])


def test_max_tokens_cuts(ngram_lm):
    s = score_text(ngram_lm, "abcdefghij", max_tokens=4)
    assert s.n == 4 and "".join(s.pieces) == "abcd"


def test_score_ids_without_start_token_skips_first(table_lm):
    table_lm.bos_id = None
    s = score_ids(table_lm, [[0, 1, 2]])[0]
    assert s.n == 2


def test_binoculars_with_one_model_is_loglik_over_entropy(ngram_lm, table_lm):
    from neumo.detect.binoculars import binoculars

    text = "The council met on Monday."
    s = score_text(ngram_lm, text)
    got = binoculars(ngram_lm, ngram_lm, [text])[0]
    assert got == pytest.approx(np.mean(s.logprob) / np.mean(s.entropy), rel=1e-5)
    with pytest.raises(NeumoError, match="one tokenizer"):
        binoculars(ngram_lm, table_lm, [text])


def test_stats_chunking_and_batch_budget_do_not_change_results(ngram_lm, monkeypatch):
    import neumo.detect.score as sc

    texts = ["A first text about rain in Sydney.", "Second one, a little longer than the first text."]
    ref = score_texts(ngram_lm, texts)
    monkeypatch.setattr(sc, "STATS_ROWS", 7)
    monkeypatch.setattr(sc, "LOGIT_BUDGET", 1)
    for a, b in zip(ref, score_texts(ngram_lm, texts)):
        np.testing.assert_allclose(a.logprob, b.logprob, rtol=1e-6)
        np.testing.assert_array_equal(a.rank, b.rank)
