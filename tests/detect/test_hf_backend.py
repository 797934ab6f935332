"""The Hugging Face backend on a tiny random Llama saved to a temporary folder (no download)."""

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from neumo.data.text import human_documents

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(human_documents("lee")[:20], trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>", "<unk>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<unk>")
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                      bos_token_id=0, eos_token_id=0, pad_token_id=0)
    folder = tmp_path_factory.mktemp("hf")
    model = LlamaForCausalLM(cfg)
    g = torch.Generator().manual_seed(0)                      # overwrite HF's init with explicit randomness
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1 if p.dim() > 1 else torch.ones_like(p))
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    from neumo.detect.lm import load_lm

    return load_lm(f"hf:{folder}")


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
