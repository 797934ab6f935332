"""A small causal Transformer (pre-LayerNorm, GELU MLP), readable top-down with shapes in comments.

Position encoding: ``learned | sinusoidal | rope | alibi | none`` (see :mod:`neumo.nn.positions`).
``forward(ids, return_memory=True)`` also returns the residual stream after each block
(``residual``: (L+1, B, T, D)), the keys and values (``kv_cache``: (L, 2, B, H, T, hs)) and the
attention weights (``attention``: (L, B, H, T, T)).
``dropout`` (default 0: none) is inverted dropout on the output of each attention and MLP sublayer,
before it is added to the residual stream, drawn from the model's own generator (:mod:`neumo.nn.dropout`).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from neumo.errors import NeumoError

from neumo.nn.base import SequenceModel, check_ids
from neumo.nn.dropout import SeededDropout, check_dropout
from neumo.nn.positions import POSITION_KINDS, alibi_bias, rope, sinusoidal
from neumo.nn.registry import register_model


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, pos: str):
        super().__init__()
        if d_model % n_heads:
            raise NeumoError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads, self.pos = n_heads, pos
        self.logit_scale = 1.0  # inverse temperature on the attention logits (> 1 sharpens; test-time probe)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, need: bool = False):
        B, T, D = x.shape
        H, hs = self.n_heads, D // self.n_heads
        q, k, v = self.qkv(x).split(D, dim=2)  # (B, T, D) each
        q, k, v = (t.view(B, T, H, hs).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hs)
        if self.pos == "rope":
            q, k = rope(q), rope(k)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)  # (B, H, T, T)
        if self.pos == "alibi":
            att = att + alibi_bias(H, T, x.device).to(att.dtype)
        if self.logit_scale != 1.0:
            att = att * self.logit_scale
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        att = att.masked_fill(~causal, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, D)  # (B, T, D)
        y = self.proj(y)
        return (y, att, torch.stack([k, v])) if need else (y, None, None)


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, pos: str, dropout: float = 0.0):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_heads, pos)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))
        self.drop = SeededDropout(dropout) if dropout > 0 else None

    def forward(self, x: torch.Tensor, need: bool = False):
        a, att, kv = self.attn(self.ln1(x), need)
        if self.drop is None:
            x = x + a
            x = x + self.mlp(self.ln2(x))
        else:
            x = x + self.drop(a)  # (B, T, D)
            x = x + self.drop(self.mlp(self.ln2(x)))
        return x, att, kv


@register_model("transformer")
class CausalTransformer(SequenceModel):
    """ids (B, T) -> logits (B, T, out_dim)."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        d_ff: int | None = None,
        max_len: int = 512,
        pos: Literal["learned", "sinusoidal", "rope", "alibi", "none"] = "learned",
        out_dim: int | None = None,
        tie_embeddings: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        if pos not in POSITION_KINDS:
            raise NeumoError(f"pos must be one of {POSITION_KINDS}, got {pos!r}")
        self.dropout = check_dropout(dropout)
        self.vocab_size, self.d_model, self.n_layers, self.n_heads = vocab_size, d_model, n_layers, n_heads
        self.max_len, self.pos = max_len, pos
        self.out_dim = out_dim or vocab_size
        self.tie = tie_embeddings and self.out_dim == vocab_size
        self.embed = nn.Embedding(vocab_size, d_model)
        self.pos_embed = nn.Embedding(max_len, d_model) if pos == "learned" else None
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_ff or 4 * d_model, pos, self.dropout) for _ in range(n_layers)
        )
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, self.out_dim, bias=False)
        self.embedding_std = 0.02
        self.tie_weights()

    def tie_weights(self) -> None:
        if self.tie:
            self.head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor, return_memory: bool = False):
        check_ids(ids, self.vocab_size)
        B, T = ids.shape
        x = self.embed(ids)  # (B, T, D)
        if self.pos == "learned":
            if T > self.max_len:
                raise NeumoError(f"sequence length {T} exceeds max_len {self.max_len} of learned positions")
            assert self.pos_embed is not None  # built for learned positions
            x = x + self.pos_embed(torch.arange(T, device=ids.device))
        elif self.pos == "sinusoidal":
            x = x + sinusoidal(T, self.d_model, ids.device, x.dtype)
        res, atts, kvs = [x], [], []
        for blk in self.blocks:
            x, att, kv = blk(x, return_memory)
            if return_memory:
                res.append(x)
                atts.append(att)
                kvs.append(kv)
        logits = self.head(self.ln_f(x))  # (B, T, out)
        if not return_memory:
            return logits
        return logits, {"residual": torch.stack(res), "kv_cache": torch.stack(kvs), "attention": torch.stack(atts)}

    def scale_attention_logits(self, beta: float = 1.0, layers: list[int] | None = None) -> None:
        """Multiply the attention logits of ``layers`` (default: all) by ``beta`` (inverse temperature:
        > 1 sharpens); the other layers are reset to 1."""
        if not beta > 0:
            raise NeumoError(f"The 'beta' parameter must be > 0. Got {beta!r} instead.")
        chosen = range(self.n_layers) if layers is None else layers
        if any(not 0 <= i < self.n_layers for i in chosen):
            raise NeumoError(f"The 'layers' parameter must list layers in [0, {self.n_layers}). Got {layers!r}.")
        for i, blk in enumerate(self.blocks):
            assert isinstance(blk, Block)
            blk.attn.logit_scale = float(beta) if i in chosen else 1.0

    def state_size(self, seq_len: int) -> int:
        """Keys and values of every layer for ``seq_len`` positions (the KV cache)."""
        return 2 * self.n_layers * self.d_model * int(seq_len)

    def memory_spec(self) -> dict[str, list[str]]:
        return {"working": ["residual"], "short_term": ["kv_cache", "attention"], "long_term": ["parameters"]}
