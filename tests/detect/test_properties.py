"""Invariants of the per-token statistics and of AUROC (property-based)."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neumo.detect.evaluate import auroc
from neumo.detect.explain import sentence_spans
from neumo.detect.stats import token_stats


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 12), v=st.integers(2, 30), scale=st.floats(0.1, 8.0))
def test_token_stats_invariants(seed, n, v, scale):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, v, generator=g, dtype=torch.float64) * scale
    x = torch.randint(0, v, (n,), generator=g)
    s = token_stats(logits, x, top_k=3, top_p=0.5)
    assert ((s["rank"] >= 1) & (s["rank"] <= v)).all()
    assert (s["in_top_k"] == (s["rank"] <= 3)).all()
    assert (s["logprob"] <= 0).all() and (s["entropy"] >= -1e-12).all() and (s["var"] >= -1e-12).all()
    assert (s["entropy"] <= np.log(v) + 1e-9).all()
    top = token_stats(logits, logits.argmax(-1))
    assert (top["rank"] == 1).all() and top["in_top_p"].all()
    # shifting logits by a constant per row changes nothing
    shifted = token_stats(logits + torch.randn(n, 1, generator=g, dtype=torch.float64), x, top_k=3, top_p=0.5)
    torch.testing.assert_close(shifted["logprob"], s["logprob"])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_auroc_invariant_under_monotone_maps_and_flips(seed):
    rng = np.random.default_rng(seed)
    y = np.r_[np.zeros(15), np.ones(15)]
    s = rng.normal(size=30) + y
    a = auroc(s, y)
    assert np.isclose(auroc(np.exp(s), y), a) and np.isclose(auroc(-s, y), 1 - a)


def test_sentence_spans_cover_all_tokens():
    pieces = list("No punctuation here at all")
    assert sentence_spans(pieces) == [("No punctuation here at all", 0, len(pieces))]
    pieces = ["Hi", ".", " ", "Bye", "!", "\n\n", "End"]
    spans = sentence_spans(pieces)
    assert [s[0] for s in spans] == ["Hi.", " Bye!", "\n\nEnd"]
    assert spans[0][1] == 0 and spans[-1][2] == len(pieces)


def test_sentences_end_at_their_punctuation_with_bpe_leading_spaces():
    pieces = ["The", " sky", " is", " blue", ".", " During", " the", " day", "!", "\n\n", "New", " para", "."]
    assert sentence_spans(pieces) == [("The sky is blue.", 0, 5), (" During the day!", 5, 9),
                                      ("\n\nNew para.", 9, 13)]
    chars = list('Hi there. "Quoted." Next')
    assert [t for t, _, _ in sentence_spans(chars)] == ["Hi there.", ' "Quoted."', " Next"]
