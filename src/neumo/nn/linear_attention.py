"""Causal linear attention (Katharopoulos et al. 2020) with a recurrent and a parallel form.

Feature map phi(x) = elu(x) + 1. Per head, the state is S_t = sum_{s<=t} phi(k_s) v_s^T (hs x hs) and
z_t = sum_{s<=t} phi(k_s) (hs); the output is y_t = phi(q_t)^T S_t / (phi(q_t)^T z_t).
- parallel form (training): A = causal(phi(Q) phi(K)^T), y = A V / rowsum(A)   -- O(T^2) but batched;
- recurrent form (probing): the loop above, which also returns S_t at every step (the working memory).
Both compute the same function (pinned by a float64 test). The state does not grow with length:
``state_size = n_layers * n_heads * hs * (hs + 1)``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from neumo.errors import NeumoError

from neumo.nn.base import SequenceModel, check_ids
from neumo.nn.registry import register_model


def phi(x: torch.Tensor) -> torch.Tensor:
    return F.elu(x) + 1.0


def parallel_linear_attention(q, k, v, eps: float = 1e-6) -> torch.Tensor:
    """q, k, v (B, H, T, hs) -> (B, H, T, hs)."""
    T = q.shape[-2]
    a = phi(q) @ phi(k).transpose(-2, -1)  # (B, H, T, T)
    a = a * torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    return (a @ v) / (a.sum(-1, keepdim=True) + eps)


def recurrent_linear_attention(q, k, v, eps: float = 1e-6):
    """Same output as the parallel form, plus the state S_t (B, H, T, hs, hs) after every step."""
    B, H, T, hs = q.shape
    fq, fk = phi(q), phi(k)
    S = q.new_zeros(B, H, hs, v.shape[-1])
    z = q.new_zeros(B, H, hs)
    ys, states = [], []
    for t in range(T):
        S = S + fk[:, :, t, :, None] * v[:, :, t, None, :]  # (B, H, hs, hv)
        z = z + fk[:, :, t]
        num = (fq[:, :, t, :, None] * S).sum(-2)  # (B, H, hv)
        den = (fq[:, :, t] * z).sum(-1, keepdim=True)
        ys.append(num / (den + eps))
        states.append(S)
    return torch.stack(ys, 2), torch.stack(states, 2)


class LinearAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise NeumoError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, form: str = "parallel"):
        B, T, D = x.shape
        H = self.n_heads
        q, k, v = (t.view(B, T, H, D // H).transpose(1, 2) for t in self.qkv(x).split(D, 2))  # (B, H, T, hs)
        if form == "parallel":
            y, S = parallel_linear_attention(q, k, v), None
        else:
            y, S = recurrent_linear_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(B, T, D)), S


class LinearBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = LinearAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(self, x, form: str = "parallel"):
        a, S = self.attn(self.ln1(x), form)
        x = x + a
        return x + self.mlp(self.ln2(x)), S


@register_model("linear_attention")
class LinearAttentionLM(SequenceModel):
    """ids (B, T) -> logits (B, T, out_dim); ``form`` chooses parallel (default) or recurrent."""

    def __init__(
        self,
        vocab_size: int,
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        d_ff: int | None = None,
        out_dim: int | None = None,
        form: Literal["parallel", "recurrent"] = "parallel",
    ):
        super().__init__()
        if form not in ("parallel", "recurrent"):
            raise NeumoError(f"form must be 'parallel' or 'recurrent', got {form!r}")
        self.vocab_size, self.d_model, self.n_layers, self.n_heads = vocab_size, d_model, n_layers, n_heads
        self.out_dim, self.form = out_dim or vocab_size, form
        self.embed = nn.Embedding(vocab_size, d_model)
        self.blocks = nn.ModuleList(LinearBlock(d_model, n_heads, d_ff or 4 * d_model) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, self.out_dim, bias=False)
        self.embedding_std = 0.02

    def forward(self, ids: torch.Tensor, return_memory: bool = False, form: str | None = None):
        check_ids(ids, self.vocab_size)
        # the recurrent form is needed to expose the state S_t
        form = "recurrent" if return_memory else (form or self.form)
        x = self.embed(ids)  # (B, T, D)
        res, states = [x], []
        for blk in self.blocks:
            x, S = blk(x, form)
            res.append(x)
            states.append(S)
        logits = self.head(self.ln_f(x))  # (B, T, out)
        if not return_memory:
            return logits
        return logits, {"residual": torch.stack(res), "state": torch.stack(states)}  # state (L,B,H,T,hs,hs)

    def state_size(self, seq_len: int = 0) -> int:
        hs = self.d_model // self.n_heads
        return self.n_layers * self.n_heads * hs * (hs + 1)

    def memory_spec(self) -> dict[str, list[str]]:
        return {"working": ["state", "residual"], "short_term": [], "long_term": ["parameters"]}
