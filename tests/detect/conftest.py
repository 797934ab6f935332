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


@pytest.fixture
def cli(capsys):
    """``cli(argv) -> (exit code, stdout, stderr)`` of ``neumo <argv>``."""
    from neumo.cli.main import main

    def run(argv):
        with pytest.raises(SystemExit) as e:
            main(argv)
        out = capsys.readouterr()
        return e.value.code, out.out, out.err

    return run
