"""A memory-token Transformer in the style of the Recurrent Memory Transformer (Bulatov et al. 2022).

The input is cut into segments of ``segment_len`` tokens. Each segment is processed as
``[read memory (M) | segment tokens (S) | write memory (M)]`` by a causal Transformer (the blocks of
:mod:`neumo.nn.transformer`); the outputs at the write positions, layer-normalised, become the memory
read by the next segment. Gradients flow through the memory across all segments (full BPTT).
Positions restart at every segment, so any input length uses only trained positions.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from neumo.errors import NeumoError

from neumo.nn.base import SequenceModel, check_ids
from neumo.nn.positions import POSITION_KINDS, sinusoidal
from neumo.nn.registry import register_model
from neumo.nn.transformer import Block


@register_model("memory_transformer")
class MemoryTransformer(SequenceModel):
    """ids (B, T) -> logits (B, T, out_dim), segment by segment with ``n_mem`` memory tokens."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        d_ff: int | None = None,
        n_mem: int = 4,
        segment_len: int = 8,
        pos: Literal["learned", "sinusoidal", "rope", "alibi", "none"] = "learned",
        out_dim: int | None = None,
    ):
        super().__init__()
        if pos not in POSITION_KINDS:
            raise NeumoError(f"pos must be one of {POSITION_KINDS}, got {pos!r}")
        if n_mem < 1 or segment_len < 1:
            raise NeumoError(f"n_mem and segment_len must be >= 1, got {n_mem}, {segment_len}")
        self.vocab_size, self.d_model, self.n_layers, self.n_heads = vocab_size, d_model, n_layers, n_heads
        self.n_mem, self.segment_len, self.pos = n_mem, segment_len, pos
        self.out_dim = out_dim or vocab_size
        self.embed = nn.Embedding(vocab_size, d_model)
        width = 2 * n_mem + segment_len
        self.pos_embed = nn.Embedding(width, d_model) if pos == "learned" else None
        self.mem_init = nn.Parameter(torch.empty(n_mem, d_model))  # (M, D)
        self.write_embed = nn.Parameter(torch.empty(n_mem, d_model))  # (M, D) marks write slots
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff or 4 * d_model, pos) for _ in range(n_layers))
        self.mem_norm = nn.LayerNorm(d_model)
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, self.out_dim, bias=False)
        self.embedding_std = 0.02

    def _segment(self, mem: torch.Tensor, x: torch.Tensor, need: bool):
        """mem (B, M, D), x (B, S, D) -> new memory (B, M, D), token states (B, S, D), residuals."""
        M, S = self.n_mem, x.shape[1]
        h = torch.cat([mem, x, mem + self.write_embed], 1)  # (B, 2M+S, D)
        if self.pos == "learned":
            assert self.pos_embed is not None  # built for learned positions
            h = h + self.pos_embed(torch.arange(h.shape[1], device=h.device))
        elif self.pos == "sinusoidal":
            h = h + sinusoidal(h.shape[1], self.d_model, h.device, h.dtype)
        res = [h[:, M : M + S]]
        for blk in self.blocks:
            h, _, _ = blk(h)
            if need:
                res.append(h[:, M : M + S])
        return self.mem_norm(h[:, M + S :]), h[:, M : M + S], res

    def forward(self, ids: torch.Tensor, return_memory: bool = False):
        check_ids(ids, self.vocab_size)
        B, T = ids.shape
        x = self.embed(ids)  # (B, T, D)
        mem = self.mem_init.expand(B, -1, -1)  # (B, M, D)
        mems, outs, res = [mem], [], []
        for s in range(0, T, self.segment_len):
            mem, h, r = self._segment(mem, x[:, s : s + self.segment_len], return_memory)
            mems.append(mem)
            outs.append(h)
            res.append(r)
        logits = self.head(self.ln_f(torch.cat(outs, 1)))  # (B, T, out)
        if not return_memory:
            return logits
        residual = torch.stack([torch.cat([r[layer] for r in res], 1) for layer in range(self.n_layers + 1)])
        return logits, {"memory": torch.stack(mems), "residual": residual}  # (n_seg+1, B, M, D), (L+1, B, T, D)

    def state_size(self, seq_len: int = 0) -> int:
        """Floats carried from one segment to the next (the memory tokens)."""
        return self.n_mem * self.d_model

    def memory_spec(self) -> dict[str, list[str]]:
        return {"working": ["residual"], "short_term": ["memory"], "long_term": ["parameters"]}
