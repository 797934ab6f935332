"""Shared checks for tools that edit neumo MLPs (``build_model("mlp", ...)``) neuron by neuron."""

from __future__ import annotations

from torch import nn

from neumo.errors import NeumoError
from neumo.nn.mlp import MLP


def mlp_linears(model: nn.Module, name: str = "model") -> list[nn.Linear]:
    """The Linear layers of a neumo MLP in order; refuse anything else with a message that says why."""
    if not isinstance(model, MLP):
        raise NeumoError(
            f"The {name!r} parameter must be a neumo MLP (build_model('mlp', ...)). Got {type(model).__name__} instead."
        )
    linears = [m for _, m in model.linear_layers()]
    if len(linears) < 2:
        raise NeumoError(f"The {name!r} MLP has no hidden layer (hidden=[]); there are no neurons to act on.")
    return linears
