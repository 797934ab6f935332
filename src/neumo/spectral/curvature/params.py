"""Choosing the parameters a curvature operator acts on, and moving between flat vectors and tensors."""

from __future__ import annotations

import contextlib
import fnmatch
from typing import Iterable, Sequence

import torch

from neumo.errors import NeumoError


def select_parameters(
    model: torch.nn.Module, params: str | Sequence[str] | None = None
) -> list[tuple[str, torch.nn.Parameter]]:
    """Named trainable parameters matching ``params`` (a glob or a list of globs; ``None``: all)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if params is None:
        chosen = named
    else:
        pats = [params] if isinstance(params, str) else list(params)
        chosen = [(n, p) for n, p in named if any(fnmatch.fnmatchcase(n, pat) for pat in pats)]
    if not chosen:
        avail = ", ".join(n for n, _ in named[:12]) + (" ..." if len(named) > 12 else "")
        raise NeumoError(f"no trainable parameter matches {params!r}; available: {avail or 'none'}")
    return chosen


def flatten(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(v: torch.Tensor, like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    out, i = [], 0
    for t in like:
        out.append(v[i : i + t.numel()].view_as(t))
        i += t.numel()
    return out


@contextlib.contextmanager
def model_mode(model: torch.nn.Module, eval_mode: bool | None):
    """Temporarily set train/eval mode (``None``: leave it); restore every submodule's flag after."""
    if eval_mode is None:
        yield
        return
    saved = [(m, m.training) for m in model.modules()]
    model.train(not eval_mode)
    try:
        yield
    finally:
        for m, flag in saved:
            m.training = flag


def loss_value(out) -> torch.Tensor:
    """A trainer-style loss_fn returns a loss or (loss, outputs): keep the loss."""
    loss = out[0] if isinstance(out, tuple) else out
    if not torch.is_tensor(loss) or loss.numel() != 1:
        raise NeumoError("loss_fn(model, batch) must return a scalar loss tensor (or a (loss, outputs) tuple)")
    return loss.reshape(())
