"""analyze_texts scores many texts in one batched pass; each result equals the text scored alone."""

import numpy as np
import pytest

from neumo.detect.analyze import analyze_text, analyze_texts

TEXTS = ["Rain fell.", "The council met on Monday to discuss the roads and the new bridge over the river.",
         "Police said a man was arrested in Sydney after the fire.", "Short one here, then a longer clause follows."]


def _tiny():
    from neumo.detect.lm.base import char_alphabet
    from neumo.detect.lm.tiny import TinyLM
    from neumo.nn import build_model

    symbols = list(char_alphabet(TEXTS))
    model = build_model("transformer", seed=0, vocab_size=len(symbols) + 1, d_model=32, n_layers=2, n_heads=4,
                        max_len=64, pos="learned")
    return TinyLM(model, symbols)


def _same(batched, alone):
    assert batched.n_tokens == alone.n_tokens and batched.verdict == alone.verdict
    assert batched.scores.keys() == alone.scores.keys()
    for k in alone.scores:
        assert batched.scores[k] == pytest.approx(alone.scores[k], rel=1e-5, abs=1e-6), k
    np.testing.assert_allclose([t.logprob for t in batched.tokens], [t.logprob for t in alone.tokens],
                               rtol=1e-5, atol=1e-6)
    assert [t.rank for t in batched.tokens] == [t.rank for t in alone.tokens]


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_batched_equals_alone_on_the_tiny_model(batch_size):
    lm = _tiny()                                    # texts of different lengths: right padding in every batch
    batched = analyze_texts(TEXTS, lm, batch_size=batch_size)
    for b, t in zip(batched, TEXTS):
        _same(b, analyze_text(t, lm))


def test_batched_equals_alone_on_a_masked_hf_model(tiny_hf_dirs):
    from neumo.detect.lm import load_lm

    lm = load_lm(f"hf:{tiny_hf_dirs[0]}")           # a real attention mask over the padding
    for b, t in zip(analyze_texts(TEXTS, lm, detectors=["logrank", "fast_detectgpt"]), TEXTS):
        _same(b, analyze_text(t, lm, detectors=["logrank", "fast_detectgpt"]))


def test_cli_lines_are_scored_in_one_batched_call(tmp_path, cli, monkeypatch):
    import neumo.detect.analyze as an

    calls = []
    real = an.analyze_texts
    monkeypatch.setattr(an, "analyze_texts", lambda texts, *a, **k: calls.append(len(texts)) or real(texts, *a, **k))
    f = tmp_path / "t.txt"
    f.write_text("\n".join(TEXTS))
    code, out, _ = cli(["detect", "score", str(f), "-m", "ngram", "--lines", "-d", "logrank", "--json"])
    assert code == 0 and calls == [len(TEXTS)] and len(__import__("json").loads(out)) == len(TEXTS)


def test_an_empty_text_in_the_batch_is_named():
    from neumo.errors import NeumoError

    with pytest.raises(NeumoError, match="text 1 is empty"):
        analyze_texts(["fine text", "  "], _tiny())


def test_statistics_chunking_changes_no_number_and_no_sample(ngram_lm, monkeypatch):
    import neumo.detect.score as sc
    from neumo.detect.score import score_texts

    ref = score_texts(ngram_lm, TEXTS[:2])
    monkeypatch.setattr(sc, "STATS_FLOATS", 3 * ngram_lm.vocab_size)       # 3 positions per chunk
    for a, b in zip(ref, score_texts(ngram_lm, TEXTS[:2])):
        np.testing.assert_array_equal(a.logprob, b.logprob)
        np.testing.assert_array_equal(a.rank, b.rank)
        np.testing.assert_array_equal(a.sample_logprob, b.sample_logprob)
