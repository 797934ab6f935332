"""Attention dilution: the entropy of each query's attention distribution, against sequence length."""

from __future__ import annotations

import numpy as np
import torch

from neumo.memory.tasks import Task, task_rng


def attention_entropy(att: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each attention row: att (..., T, T) with rows summing to 1 -> (..., T)."""
    p = att.double().clamp(min=0)
    return -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(-1)


def mean_entropy(att: torch.Tensor, last_only: bool = False) -> float:
    """Mean entropy over layers, batch, heads and queries (or the last query only): att (L, B, H, T, T)."""
    h = attention_entropy(att)  # (L, B, H, T)
    return float((h[..., -1] if last_only else h).mean())


@torch.no_grad()
def entropy_by_length(
    model: torch.nn.Module, task: Task, lengths: list[int], seed: int, n: int = 128, last_only: bool = True
) -> dict[int, float]:
    """Mean attention entropy of ``model`` (returning ``attention`` memory) on task samples per length."""
    was = model.training
    model.eval()
    try:
        out = {}
        for L in lengths:
            batch = task.sample(n, task_rng(seed, "probe", "entropy", L), L)
            _, mem = model(batch.inputs, return_memory=True)
            out[int(L)] = mean_entropy(mem["attention"], last_only)
    finally:
        model.train(was)
    return out


def uniform_entropy(T: int) -> np.ndarray:
    """Closed form for uniform causal attention: query t attends to t+1 keys, entropy log(t+1)."""
    return np.log(np.arange(1, T + 1, dtype=np.float64))
