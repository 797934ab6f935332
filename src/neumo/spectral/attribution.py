"""Which components of a small Transformer a behaviour uses: ablation and activation patching.

Components of neumo's ``transformer`` are its attention heads (``L{l}.H{h}``: head ``h``'s slice of the
input of block ``l``'s output projection, i.e. its contribution before the heads are mixed) and its MLPs
(``L{l}.mlp``: the MLP's output added to the residual stream).

- :func:`ablation_effects`: the change of a metric when one component is replaced by zero (``zero``) or by
  its mean over a reference batch and all positions (``mean``; Wang et al. 2022 style mean-ablation).
- :func:`patching_effects`: activation patching (Meng et al. 2022; Heimersheim & Nanda 2024): run the
  corrupted input with one component's activation taken from the clean run; the effect is the metric's
  change from the corrupted run, and, normalised, the fraction of the clean-vs-corrupted gap it restores.

``metric(logits, ids) -> float`` is the caller's (e.g. the task's loss or a logit difference). Everything
runs in eval mode without gradients and leaves the model as it was.
"""

from __future__ import annotations

import contextlib
import re
from typing import Callable, Iterator

import torch

from neumo.errors import NeumoError

Metric = Callable[[torch.Tensor, torch.Tensor], float]
_NAME = re.compile(r"^L(\d+)\.(?:H(\d+)|mlp)$")


def components(model: torch.nn.Module) -> list[str]:
    """Component names in forward order: each layer's heads, then its MLP."""
    blocks = _blocks(model)
    return [n for i, b in enumerate(blocks) for n in [*(f"L{i}.H{h}" for h in range(b.attn.n_heads)), f"L{i}.mlp"]]


def _blocks(model: torch.nn.Module):
    blocks = getattr(model, "blocks", None)
    if blocks is None or not all(hasattr(b, "attn") and hasattr(b, "mlp") for b in blocks):
        raise NeumoError(
            f"attribution needs neumo's 'transformer' (blocks with attn and mlp); got {type(model).__name__}"
        )
    return blocks


def _parse(model: torch.nn.Module, name: str) -> tuple[int, int | None]:
    m = _NAME.match(name)
    blocks = _blocks(model)
    if (
        not m
        or int(m.group(1)) >= len(blocks)
        or (m.group(2) is not None and int(m.group(2)) >= blocks[int(m.group(1))].attn.n_heads)
    ):
        raise NeumoError(f"unknown component {name!r}; components: {', '.join(components(model))}")
    return int(m.group(1)), (int(m.group(2)) if m.group(2) is not None else None)


@contextlib.contextmanager
def _hooked(model: torch.nn.Module, name: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Within the block, ``fn`` maps the component's activation (head: (B, T, hs); MLP: (B, T, D)) to
    the one used instead; ``fn`` may also just record it."""
    layer, head = _parse(model, name)
    blk = _blocks(model)[layer]
    if head is None:
        handle = blk.mlp.register_forward_hook(lambda _m, _i, out: fn(out))
    else:
        hs = blk.attn.proj.in_features // blk.attn.n_heads
        sl = slice(head * hs, (head + 1) * hs)

        def pre(_m, args):
            y = args[0].clone()
            y[..., sl] = fn(y[..., sl])
            return (y,)

        handle = blk.attn.proj.register_forward_pre_hook(pre)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def _eval(model: torch.nn.Module) -> Iterator[None]:
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was)


def _recorder(store: dict[str, torch.Tensor], name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    def keep(a: torch.Tensor) -> torch.Tensor:
        return store.setdefault(name, a.detach().clone())

    return keep


def _constant(value: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    def replace(_a: torch.Tensor) -> torch.Tensor:
        return value

    return replace


def _mean_of(mean: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    def replace(a: torch.Tensor) -> torch.Tensor:
        return mean.expand_as(a)

    return replace


def record(model: torch.nn.Module, ids: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Every component's activation on ``ids`` (head: (B, T, hs); MLP: (B, T, D))."""
    names = components(model) if names is None else names
    got: dict[str, torch.Tensor] = {}
    with _eval(model), contextlib.ExitStack() as stack:
        for n in names:
            stack.enter_context(_hooked(model, n, _recorder(got, n)))
        model(ids)
    return got


def ablation_effects(
    model: torch.nn.Module, ids: torch.Tensor, metric: Metric, mode: str = "mean", reference: torch.Tensor | None = None
) -> dict[str, float]:
    """``metric(ablated) - metric(intact)`` for each component (a loss rises where a component matters).

    ``mean`` replaces the activation by its mean over ``reference`` (default ``ids``) and all positions.
    """
    if mode not in ("zero", "mean"):
        raise NeumoError(f"The 'mode' parameter must be one of 'zero', 'mean'. Got {mode!r} instead.")
    names = components(model)
    means = (
        {n: a.mean(dim=(0, 1)) for n, a in record(model, ids if reference is None else reference).items()}
        if mode == "mean"
        else {}
    )
    with _eval(model):
        base = float(metric(model(ids), ids))
        out = {}
        for n in names:
            repl = torch.zeros_like if mode == "zero" else _mean_of(means[n])
            with _hooked(model, n, repl):
                out[n] = float(metric(model(ids), ids)) - base
    return out


def patching_effects(
    model: torch.nn.Module, clean: torch.Tensor, corrupt: torch.Tensor, metric: Metric
) -> dict[str, dict[str, float]]:
    """For each component: the corrupted run with that component's clean activation.

    Returns ``{name: {"effect": m(patched) - m(corrupt), "restored": effect / (m(clean) - m(corrupt))}}``
    (``restored`` is NaN when clean and corrupted runs give the same metric). ``metric`` is evaluated with
    the clean ids (the targets the clean run should produce).
    """
    if clean.shape != corrupt.shape:
        raise NeumoError(
            f"clean and corrupted inputs must have the same shape; got {tuple(clean.shape)} and {tuple(corrupt.shape)}"
        )
    acts = record(model, clean)
    with _eval(model):
        m_clean, m_corrupt = float(metric(model(clean), clean)), float(metric(model(corrupt), clean))
        gap = m_clean - m_corrupt
        out = {}
        for n, a in acts.items():
            with _hooked(model, n, _constant(a)):
                eff = float(metric(model(corrupt), clean)) - m_corrupt
            out[n] = {"effect": eff, "restored": eff / gap if gap != 0 else float("nan")}
    return out
