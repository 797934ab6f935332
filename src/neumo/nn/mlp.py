"""Multi-layer perceptron: Linear -> activation [-> dropout] -> ... -> Linear.

``dropout`` (default 0: none) is inverted dropout after every hidden activation, drawn from the
model's own generator (:mod:`neumo.nn.dropout`). With ``dropout=0`` no dropout module exists and the
model is the plain ``Sequential`` it always was (same parameter names, same outputs).
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import nn

from neumo.errors import NeumoError
from neumo.nn.dropout import SeededDropout, check_dropout
from neumo.nn.registry import register_model

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "linear": nn.Identity}


@register_model("mlp")
class MLP(nn.Module):
    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (256, 256),
        activation: Literal["relu", "tanh", "gelu", "linear"] = "relu",
        bias: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise NeumoError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.dropout = check_dropout(dropout)
        dims = [in_dim, *hidden, out_dim]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b, bias=bias))
            if i < len(dims) - 2:
                layers.append(ACTIVATIONS[activation]())
        self.net = nn.Sequential(*layers)
        self.drop = SeededDropout(self.dropout) if self.dropout > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, in) -> (B, out)
        if self.drop is None:
            return self.net(x)
        for layer in self.net:
            x = layer(x)
            if not isinstance(layer, nn.Linear):  # after each hidden activation
                x = self.drop(x)
        return x

    def linear_layers(self) -> list[tuple[str, nn.Linear]]:
        return [(n, m) for n, m in self.named_modules() if isinstance(m, nn.Linear)]
