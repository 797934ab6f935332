"""Inverted dropout that draws its masks from an explicit generator (never the global RNG).

``SeededDropout(p)`` zeroes each entry with probability ``p`` in training mode and scales the kept
entries by ``1 / (1 - p)``, so the expectation of the output equals the input; in eval mode (or with
``p = 0``) it is the identity. Its generator is set by :func:`neumo.nn.init.init_` (so by
``build_model``) from ``make_generator(seed, "dropout")``: the same seed gives the same masks, and the
initialisation stream is untouched. :func:`seed_dropout_` re-seeds every dropout module of a model
(one shared generator). Masks are drawn on the generator's device (CPU) and moved to the input's.
The generator's state is not part of the state dict: a run resumed from a checkpoint draws other masks
than the uninterrupted run would have (re-seed with :func:`seed_dropout_` if that matters).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neumo.errors import NeumoError
from neumo.seeding import make_generator


def check_dropout(p: float) -> float:
    """Validate a drop probability: a number with 0 <= p < 1."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or not 0.0 <= p < 1.0:
        raise NeumoError(
            f"The 'dropout' parameter must be a number with 0 <= dropout < 1 (the probability "
            f"of zeroing a unit). Got {p!r} instead."
        )
    return float(p)


class SeededDropout(nn.Module):
    """x -> x * m / (1 - p) with m ~ Bernoulli(1 - p) i.i.d. per entry (training mode only)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = check_dropout(p)
        self.generator: torch.Generator | None = None

    def set_generator(self, generator: torch.Generator) -> None:
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.generator is None:
            raise NeumoError(
                "this dropout module has no generator; build the model with "
                "neumo.nn.build_model(..., seed=...) or call neumo.nn.dropout.seed_dropout_(model, seed)"
            )
        keep = 1.0 - self.p
        u = torch.rand(x.shape, generator=self.generator, device=self.generator.device, dtype=x.dtype)
        mask = (u < keep).to(device=x.device, dtype=x.dtype)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def seed_dropout_(model: nn.Module, seed: int) -> nn.Module:
    """Give every :class:`SeededDropout` in ``model`` one generator seeded from ``(seed, "dropout")``."""
    g = make_generator(seed, "dropout")
    for m in model.modules():
        if isinstance(m, SeededDropout):
            m.set_generator(g)
    return model
