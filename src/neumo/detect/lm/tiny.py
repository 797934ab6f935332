"""A small neumo causal Transformer as a scoring model, trained by neumo's own loop.

Used by studies (synthetic languages with a known p) and by tests. Symbols are either characters
(``TinyLM.encode`` tokenizes text) or abstract ids (studies call ``forward`` on id tensors directly).
The last id is the start token: every training sequence begins with it, as every scored text does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from neumo.data.text import char_lm_batches
from neumo.detect.lm.base import CausalLM, char_alphabet
from neumo.errors import NeumoError
from neumo.nn import build_model
from neumo.nn.transformer import Block, CausalTransformer
from neumo.train import Trainer, TrainConfig, make_optimizer


class TinyLM(CausalLM):
    """A neumo ``transformer`` (vocab = symbols + start token) seen through the CausalLM interface."""

    def __init__(self, model: CausalTransformer, symbols: list[str], name: str = "tiny"):
        if model.vocab_size != len(symbols) + 1:
            raise NeumoError(f"model vocabulary {model.vocab_size} != {len(symbols)} symbols + start token")
        self.model, self.symbols, self.name = model.eval(), list(symbols), name
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.vocab_size = model.vocab_size
        self.hidden_size = model.d_model
        self.max_len = model.max_len
        self.bos_id = self.pad_id = len(symbols)
        self.tokenizer_id = f"tiny:{len(symbols)}:{''.join(symbols)[:64]}"

    def encode(self, text: str) -> tuple[list[int], list[str]]:
        if any(len(s) != 1 for s in self.symbols):
            raise NeumoError(f"{self.name} has abstract symbols; score id sequences, not text")
        return [self.index.get(c, 0) for c in text], list(text)

    def id_to_piece(self, i: int) -> str:
        return "" if i == self.bos_id else self.symbols[i]

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(ids).float()  # (B, T, V); causal: right pads inert

    def save(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        m = self.model
        block = m.blocks[0]
        assert isinstance(block, Block)
        ff = block.mlp[0]
        assert isinstance(ff, torch.nn.Linear)
        cfg = {
            "vocab_size": m.vocab_size,
            "d_model": m.d_model,
            "n_layers": m.n_layers,
            "n_heads": m.n_heads,
            "max_len": m.max_len,
            "pos": m.pos,
            "d_ff": ff.out_features,
        }
        (folder / "tiny.json").write_text(json.dumps({"config": cfg, "symbols": self.symbols, "name": self.name}))
        save_file({k: v.contiguous() for k, v in m.state_dict().items()}, str(folder / "model.safetensors"))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> "TinyLM":
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / "tiny.json").is_file():
            raise NeumoError(f"no tiny model in {folder} (tiny.json missing); save one with TinyLM.save")
        meta = json.loads((folder / "tiny.json").read_text())
        model = build_model("transformer", seed=0, **meta["config"])
        assert isinstance(model, CausalTransformer)
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        return cls(model, meta["symbols"], meta.get("name", "tiny"))


def train_tiny(
    sequences: list[np.ndarray],
    n_symbols: int,
    *,
    d_model: int = 64,
    n_layers: int = 2,
    n_heads: int = 4,
    seq_len: int = 64,
    steps: int = 300,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = False,
) -> CausalTransformer:
    """Train a causal Transformer on id sequences (each prefixed with the start token ``n_symbols``)."""
    bos = n_symbols
    stream = torch.from_numpy(
        np.concatenate([np.concatenate([[bos], np.asarray(s, np.int64)]) for s in sequences]).astype(np.int64)
    )
    model = build_model(
        "transformer",
        seed=seed,
        vocab_size=n_symbols + 1,
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        max_len=seq_len,
        pos="learned",
    )
    assert isinstance(model, CausalTransformer)
    cfg = TrainConfig(steps=steps, batch_size=batch_size, optimizer="adam", lr=lr, eval_every=0, log_every=1)
    opt = make_optimizer(model.parameters(), cfg)

    def loss_fn(m, batch):
        x, y = batch
        return F.cross_entropy(m(x).reshape(-1, m.vocab_size), y.reshape(-1))

    Trainer(
        model,
        opt,
        loss_fn,
        char_lm_batches(stream, seq_len, batch_size, seed),
        steps,
        log_every=steps or 1,
        progress=progress,
    ).fit()
    return model.eval()


def train_tiny_on_text(texts: list[str], steps: int = 300, seed: int = 0, **kwargs) -> TinyLM:
    """A character-level TinyLM trained on ``texts`` (alphabet: the 95 most frequent characters)."""
    symbols = list(char_alphabet(texts))
    index = {c: i for i, c in enumerate(symbols)}
    seqs = [np.array([index.get(c, 0) for c in t], np.int64) for t in texts if t]
    return TinyLM(train_tiny(seqs, len(symbols), steps=steps, seed=seed, **kwargs), symbols)
