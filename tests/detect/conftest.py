"""Fixtures for detect tests: a toy CausalLM with known logits, the shipped n-gram model, the CLI."""

from __future__ import annotations

import pytest
import torch

from neumo.detect.lm.base import CausalLM


class TableLM(CausalLM):
    """Logits depend only on the previous token: logits[t] = table[ids[t]] (a bigram with known logits)."""

    def __init__(self, table: torch.Tensor, max_len: int = 64, name: str = "table"):
        self.table = table.to(torch.float32)
        self.vocab_size = table.shape[1]
        self.hidden_size = table.shape[1]
        self.max_len = max_len
        self.bos_id = table.shape[0] - 1
        self.pad_id = self.bos_id
        self.name = name
        self.tokenizer_id = f"table:{self.vocab_size}"

    def encode(self, text):
        ids = [ord(c) - ord("a") for c in text]
        return ids, list(text)

    def forward(self, ids, mask):
        return self.table[ids]


@pytest.fixture
def table_lm():
    g = torch.Generator().manual_seed(0)
    return TableLM(torch.randn(5, 5, generator=g) * 2)     # symbols a-d + start token (id 4)


@pytest.fixture(scope="session")
def ngram_lm():
    from neumo.detect.lm import load_lm

    return load_lm("ngram")


def save_tiny_hf(folder, seed: int = 0):
    """A random 1-layer Llama with a 300-token BPE trained on 20 shipped news texts, saved to ``folder``.
    Any two seeds share the tokenizer (it does not depend on the seed): a pair for Binoculars."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from neumo.data.text import human_documents

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(human_documents("lee")[:20], trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>", "<unk>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<unk>")
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                      bos_token_id=0, eos_token_id=0, pad_token_id=0)
    model = LlamaForCausalLM(cfg)
    g = torch.Generator().manual_seed(seed)                  # overwrite HF's init with explicit randomness
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1 if p.dim() > 1 else torch.ones_like(p))
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_hf_dirs(tmp_path_factory):
    """Two tiny random Llama folders (seeds 0 and 1) with one tokenizer."""
    return [save_tiny_hf(tmp_path_factory.mktemp(f"hf{s}"), seed=s) for s in (0, 1)]
