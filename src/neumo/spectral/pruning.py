"""Iterative magnitude pruning (IMP) with rewinding, and its two controls.

Lottery tickets (Frankle & Carbin 2019): train, remove the fraction ``rate`` of the remaining weights
with the smallest magnitude, reset the survivors to their saved values and repeat; after ``r`` rounds the
sparsity is ``1 - (1 - rate)^r`` (up to rounding: each round prunes ``round(rate * remaining)`` weights).
With rewinding (Frankle et al. 2020, "Linear mode connectivity and the lottery ticket hypothesis") the
saved values are the weights after ``k`` training steps rather than at initialisation: train ``k`` steps,
then call :func:`imp` (it snapshots the model on entry) or pass ``rewind_state``.

Masks are ``{parameter name: bool tensor}`` (``True`` keeps a weight). By default the weights of Linear
and Conv layers are pruned, biases and norms are not (``params=`` takes globs). ``scope="global"`` ranks
all weights together, ``"layerwise"`` prunes ``rate`` of each tensor. Masked weights stay zero through
training when the gradients are masked (:func:`mask_gradients`: hooks, removable) and the optimizer is
fresh (its state starts at zero), and in any case when :func:`apply_masks_` is called after each step
(:class:`MaskCallback` does it for :class:`neumo.train.Trainer`).

Controls: :func:`random_mask` (the same number of zeros per tensor, at random positions) and
:func:`reinit` (the same mask on a fresh initialisation from another seed).
"""

from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from neumo.errors import NeumoError, check_choice
from neumo.nn.init import init_
from neumo.seeding import as_generator
from neumo.train import Callback

Masks = dict[str, torch.Tensor]


def prunable(model: nn.Module, params: str | Sequence[str] | None = None) -> list[tuple[str, nn.Parameter]]:
    """The parameters IMP acts on: Linear/Conv weights by default, else those matching the glob(s)."""
    named = dict(model.named_parameters())
    if params is None:
        weights = [
            f"{n}.weight" if n else "weight"
            for n, m in model.named_modules()
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
        ]
        chosen = [(n, named[n]) for n in weights if n in named]
    else:
        pats = [params] if isinstance(params, str) else list(params)
        chosen = [(n, p) for n, p in named.items() if any(fnmatch.fnmatchcase(n, pat) for pat in pats)]
    if not chosen:
        raise NeumoError(f"no parameter to prune matches {params!r}; available: {', '.join(list(named)[:12])}")
    return chosen


def _check_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> dict[str, nn.Parameter]:
    named = dict(model.named_parameters())
    for n, m in masks.items():
        if n not in named:
            raise NeumoError(f"mask {n!r} names no parameter of the model; parameters: {', '.join(list(named)[:12])}")
        if m.shape != named[n].shape:
            raise NeumoError(f"mask {n!r} has shape {tuple(m.shape)}, the parameter {tuple(named[n].shape)}")
    return {n: named[n] for n in masks}


def _check_rate(rate: float, name: str = "rate") -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
        raise NeumoError(f"The {name!r} parameter must be a number in [0, 1). Got {rate!r} instead.")
    return float(rate)


def sparsity(masks: Mapping[str, torch.Tensor]) -> float:
    """Fraction of masked (pruned) entries over all masks."""
    total = sum(m.numel() for m in masks.values())
    return 0.0 if total == 0 else sum(int((~m.bool()).sum()) for m in masks.values()) / total


def layer_sparsity(masks: Mapping[str, torch.Tensor]) -> dict[str, float]:
    return {n: float((~m.bool()).sum()) / max(m.numel(), 1) for n, m in masks.items()}


@torch.no_grad()
def magnitude_masks(
    model: nn.Module,
    rate: float,
    masks: Mapping[str, torch.Tensor] | None = None,
    scope: str = "global",
    params: str | Sequence[str] | None = None,
) -> Masks:
    """New masks that also remove ``round(rate * remaining)`` of the still-kept weights, smallest |w| first
    (over all tensors for ``scope="global"``, in each tensor for ``"layerwise"``; ties by position)."""
    rate = _check_rate(rate)
    check_choice("scope", scope, ("global", "layerwise"))
    if masks is None:
        masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in prunable(model, params)}
    named = _check_masks(model, masks)
    keep = {n: m.bool().clone() for n, m in masks.items()}
    groups = [list(keep)] if scope == "global" else [[n] for n in keep]
    for names in groups:
        score = torch.cat(
            [torch.where(keep[n], named[n].detach().abs(), torch.inf).reshape(-1).cpu().double() for n in names]
        )
        remaining = int(sum(int(keep[n].sum()) for n in names))
        k = int(round(rate * remaining))
        if k == 0:
            continue
        drop = torch.argsort(score, stable=True)[:k]
        flat = torch.ones(score.numel(), dtype=torch.bool)
        flat[drop] = False
        i = 0
        for n in names:
            size = keep[n].numel()
            keep[n] &= flat[i : i + size].view_as(keep[n]).to(keep[n].device)
            i += size
    return keep


@torch.no_grad()
def apply_masks_(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> nn.Module:
    """Zero the masked weights in place."""
    for n, p in _check_masks(model, masks).items():
        p.mul_(masks[n].to(device=p.device, dtype=p.dtype))
    return model


def mask_gradients(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> list:
    """Register hooks that zero the gradients of masked weights; returns the handles (``h.remove()``)."""
    handles = []
    for n, p in _check_masks(model, masks).items():
        m = masks[n].to(device=p.device, dtype=p.dtype)
        handles.append(p.register_hook(lambda g, m=m: g * m))
    return handles


class MaskCallback(Callback):
    """Keeps masks applied during :class:`neumo.train.Trainer` fits: re-applies them after every step."""

    def __init__(self, masks: Mapping[str, torch.Tensor]):
        self.masks = masks

    def on_fit_start(self, trainer, state) -> None:
        apply_masks_(trainer.model, self.masks)

    def on_after_optimizer_step(self, trainer, state) -> None:
        apply_masks_(trainer.model, self.masks)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the state dict (the weights to rewind to)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def rewind_(
    model: nn.Module, state: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor] | None = None
) -> nn.Module:
    """Load the saved ``state`` exactly, then zero the masked weights."""
    model.load_state_dict(state)
    return apply_masks_(model, masks) if masks is not None else model


def random_mask(
    like: Mapping[str, torch.Tensor], sparsity: float | None = None, generator: int | torch.Generator | None = None
) -> Masks:
    """Masks of the shapes in ``like`` with zeros at uniformly random positions: per tensor, as many as the
    mask ``like[n]`` has (``sparsity=None``) or ``round(sparsity * numel)``. ``generator``: a seed or Generator."""
    g = as_generator(generator, "random_mask")
    if sparsity is not None:
        sparsity = _check_rate(sparsity, "sparsity")
    out = {}
    for n, ref in like.items():
        k = int((~ref.bool()).sum()) if sparsity is None else int(round(sparsity * ref.numel()))
        flat = torch.ones(ref.numel(), dtype=torch.bool)
        flat[torch.randperm(ref.numel(), generator=g)[:k]] = False
        out[n] = flat.view(ref.shape).to(ref.device)
    return out


@torch.no_grad()
def reinit(model: nn.Module, masks: Mapping[str, torch.Tensor], seed: int) -> nn.Module:
    """A copy of ``model`` freshly initialised from ``seed`` (as ``build_model`` would) with ``masks`` applied."""
    new = copy.deepcopy(model)
    dtype = next(new.parameters()).dtype
    init_(new.float(), seed)
    return apply_masks_(new.to(dtype), masks)


@dataclass(frozen=True)
class ImpResult:
    masks: Masks  # after the last round
    sparsity: list[float] = field(default_factory=list)  # overall sparsity after each round
    layer_sparsity: list[dict[str, float]] = field(default_factory=list)
    history: list[Masks] = field(default_factory=list)  # the masks after each round


def imp(
    model: nn.Module,
    train_fn: Callable[[nn.Module], None],
    rounds: int,
    rate: float,
    rewind_state: Mapping[str, torch.Tensor] | None = None,
    scope: str = "global",
    params: str | Sequence[str] | None = None,
    masks: Mapping[str, torch.Tensor] | None = None,
) -> ImpResult:
    """``rounds`` of: ``train_fn(model)`` with masked gradients, prune ``rate`` of the remaining weights by
    magnitude, rewind to ``rewind_state`` (default: the model's weights on entry) with the new masks.

    ``train_fn(model) -> None`` is the caller's training (it should build its optimizer inside, so that
    optimizer state starts at zero); it runs with :func:`mask_gradients` hooks and the masks are applied
    again after it. On return ``model`` holds the rewound weights with the final masks (the ticket, ready
    to be trained)."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise NeumoError(f"The 'rounds' parameter must be an integer >= 1. Got {rounds!r} instead.")
    _check_rate(rate)
    check_choice("scope", scope, ("global", "layerwise"))
    state = snapshot(model) if rewind_state is None else rewind_state
    current = (
        dict(masks)
        if masks is not None
        else {n: torch.ones_like(p, dtype=torch.bool) for n, p in prunable(model, params)}
    )
    apply_masks_(model, current)
    history, overall, per_layer = [], [], []
    for _ in range(rounds):
        handles = mask_gradients(model, current)
        try:
            train_fn(model)
        finally:
            for h in handles:
                h.remove()
        apply_masks_(model, current)
        current = magnitude_masks(model, rate, current, scope=scope)
        rewind_(model, state, current)
        history.append(current)
        overall.append(sparsity(current))
        per_layer.append(layer_sparsity(current))
    return ImpResult(masks=current, sparsity=overall, layer_sparsity=per_layer, history=history)
