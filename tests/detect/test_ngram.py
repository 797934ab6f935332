import numpy as np
import pytest
import torch

from neumo.detect.lm import NgramLM, load_lm
from neumo.detect.lm.ngram import NgramCounts
from neumo.errors import NeumoError


def _dict_ngram(seqs, V, order, pad, D, hist):
    """Reference: the same interpolated absolute discounting with Python dictionaries."""
    from collections import Counter, defaultdict

    cnt = [defaultdict(Counter) for _ in range(order)]
    for s in seqs:
        x = [pad] * (order - 1) + list(s)
        for i in range(order - 1, len(x)):
            for k in range(order):
                cnt[k][tuple(x[i - k:i])][x[i]] += 1
    p = np.full(V, 1.0 / V)
    for k in range(order):
        h = tuple(hist[len(hist) - k:]) if k else ()
        c = cnt[k].get(h)
        if not c:
            continue
        tot, distinct = sum(c.values()), len(c)
        new = np.array([max(c.get(w, 0) - D, 0) / tot for w in range(V)]) + D * distinct / tot * p
        p = new
    return p


def test_ngram_matches_dictionary_reference():
    rng = np.random.default_rng(0)
    V, order, pad = 6, 3, 5
    seqs = [rng.integers(0, 5, size=n) for n in (40, 25, 60)]
    c = NgramCounts.fit(seqs, V, order, pad)
    for hist in ([1, 2], [pad, pad], [4, 0], [3, 3]):
        got = c.probs(np.array([hist]), 0.75)[0]
        np.testing.assert_allclose(got, _dict_ngram(seqs, V, order, pad, 0.75, hist), rtol=1e-12)
        assert got.sum() == pytest.approx(1.0)


def test_load_ngram_default_is_cached_and_normalised():
    lm = load_lm("ngram")
    assert lm is load_lm("ngram")
    ids, pieces = lm.encode("Hello, world.")
    assert "".join(pieces) == "Hello, world."
    x = torch.tensor([[lm.bos_id] + ids])
    p = lm.forward(x, torch.ones_like(x)).double().exp()
    np.testing.assert_allclose(p.sum(-1).numpy(), 1.0, rtol=1e-5)


def test_ngram_bad_inputs():
    with pytest.raises(NeumoError, match="non-empty"):
        NgramLM.fit([""])
    with pytest.raises(NeumoError, match="discount"):
        NgramLM.fit(["abc"], discount=1.5)
    with pytest.raises(NeumoError, match="unknown model"):
        load_lm("gpt-17")


def test_load_lm_rejects_unknown_options():
    with pytest.raises(NeumoError, match="no option"):
        load_lm("ngram", temperature=2)


def test_tiny_lm_save_load_roundtrip(tmp_path):
    from neumo.detect.lm.tiny import TinyLM, train_tiny_on_text
    from neumo.detect.score import score_text

    lm = train_tiny_on_text(["abcabcabd " * 20], steps=5, seed=0, d_model=16, n_layers=1, seq_len=16)
    again = load_lm("tiny", path=lm.save(tmp_path / "tiny"))
    assert isinstance(again, TinyLM)
    np.testing.assert_allclose(score_text(lm, "abcab").logprob, score_text(again, "abcab").logprob, rtol=1e-6)


def test_default_tiny_is_cached_on_disk(tmp_path, monkeypatch):
    from neumo.detect.lm import _tiny_default
    from neumo.detect.score import score_text

    monkeypatch.setenv("NEUMO_CACHE", str(tmp_path))
    _tiny_default.cache_clear()
    a = load_lm("tiny", steps=3, seed=1)
    assert (tmp_path / "tiny-lee_background-3-1" / "model.safetensors").is_file()
    _tiny_default.cache_clear()
    b = load_lm("tiny", steps=3, seed=1)
    np.testing.assert_allclose(score_text(a, "The man.").logprob, score_text(b, "The man.").logprob, rtol=1e-6)
    _tiny_default.cache_clear()
