"""The training config shared by studies, and optimizer construction (one place, so every instrument
trains the same way)."""

from __future__ import annotations

from typing import Iterable, Literal

import torch
from pydantic import Field

from neumo.config import StrictModel


class TrainConfig(StrictModel):
    steps: int = Field(1000, ge=0, le=100_000_000, description="at most 1e8 (a CPU bench)")
    batch_size: int = Field(64, ge=1, le=1_000_000, description="at most 1e6 samples per step")
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(
        1e-3, gt=0, le=1e3, allow_inf_nan=False, description="a finite step size up to 1e3 (larger only overflows)"
    )
    momentum: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0, allow_inf_nan=False)
    grad_clip: float | None = Field(None, gt=0, allow_inf_nan=False)
    eval_every: int = Field(100, ge=0)
    log_every: int = Field(10, ge=1)


def make_optimizer(params: Iterable[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    params = list(params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
