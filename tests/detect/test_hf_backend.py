"""The Hugging Face backend on a tiny random Llama saved to a temporary folder (no download)."""

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def tiny_hf(tiny_hf_dirs):
    from neumo.detect.lm import load_lm

    return load_lm(f"hf:{tiny_hf_dirs[0]}")   # conftest.save_tiny_hf, seed 0


def test_pieces_reproduce_text_and_stats_match_dense(tiny_hf):
    from neumo.detect.score import score_text, score_texts

    text = "The fire crews worked  through the night, near Sydney.\nResidents stayed inside."
    s = score_text(tiny_hf, text)
    assert "".join(s.pieces) == text and tiny_hf.bos_id == 0
    ids = [0] + tiny_hf.encode(text)[0]
    x = torch.tensor([ids])
    lq = torch.log_softmax(tiny_hf.forward(x, torch.ones_like(x))[0, :-1].double(), -1)
    np.testing.assert_allclose(s.logprob, lq.gather(-1, x[0, 1:, None])[:, 0].numpy(), rtol=1e-4, atol=1e-5)
    # padded in a batch with a longer text: same numbers
    both = score_texts(tiny_hf, [text, text + " And a longer tail follows here."], batch_size=2)
    np.testing.assert_allclose(both[0].logprob, s.logprob, rtol=1e-4, atol=1e-5)


def test_windows_on_a_text_longer_than_the_context(tiny_hf):
    from neumo.detect.score import score_text

    text = "word and more words " * 30                            # > 64 tokens: several windows
    s = score_text(tiny_hf, text)
    assert s.n == len(tiny_hf.encode(text)[0]) and "".join(s.pieces) == text
    assert np.all(np.isfinite(s.logprob))
