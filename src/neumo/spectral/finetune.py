"""One base model, many tasks: per-layer fine-tuning updates and their shared subspace.

:func:`task_updates` fine-tunes a fresh copy of a base model on each task (fully, or through LoRA
adapters) and returns, per linear layer, the stack of flattened updates dW_i = W_i - W_base (one row per
task). :func:`shared_subspace` runs PCA over such a stack (:func:`neumo.spectral.subspace.update_pca`,
uncentred by default: the mean update is itself a shared direction) and reports the scree, the number of
components holding ``share`` of the energy, the top-k basis and, given a reference subspace, the principal
angles between the two (:func:`neumo.spectral.subspace.principal_angles`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from neumo.errors import NeumoError, check_choice, check_positive
from neumo.spectral.lowrank import INITS, LoRALinear, apply_lora
from neumo.spectral.subspace import principal_angles, update_pca

MODES = ("full", "lora")


def layer_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The (out, in) weight of every linear layer, detached; an adapter counts as its layer (base + s B A)."""
    out: dict[str, torch.Tensor] = {}
    for name, m in model.named_modules():
        if isinstance(m, LoRALinear):
            w = m.base.weight if m.merged else m.base.weight + m.delta_weight()
            out[name] = w.detach().clone()
        elif isinstance(m, nn.Linear) and not any(name.startswith(n + ".") for n in out):
            out[name] = m.weight.detach().clone()
    return out


def _loss(loss_fn, model, batch) -> torch.Tensor:
    res = loss_fn(model, batch)
    return res[0] if isinstance(res, tuple) else res


def task_updates(
    model_fn: Callable[[], nn.Module],
    base_state: dict[str, torch.Tensor],
    batch_fns: Sequence[Callable[[int], Any]],
    loss_fn: Callable,
    *,
    steps: int,
    lr: float = 1e-3,
    mode: str = "full",
    rank: int = 4,
    init: str = "lora",
    targets=None,
    seed: int = 0,
    on_task: Callable[[int, nn.Module], Any] | None = None,
) -> dict[str, torch.Tensor]:
    """Fine-tune ``model_fn()`` loaded with ``base_state`` on each task for ``steps`` Adam steps.

    ``batch_fns[i](step)`` gives task i's batch (a pure function of the step) and ``loss_fn(model, batch)``
    its loss (or ``(loss, outputs)``). ``mode="lora"`` trains only adapters from
    ``apply_lora(model, rank, init, targets=targets, seed=seed)``. Returns ``{layer: (n_tasks, out * in)}``.
    ``base_state`` is never modified. ``on_task(i, model)``, if given, is called with each fine-tuned model
    (e.g. to evaluate it: the returned updates cover the layers' weights, not their biases).
    """
    check_choice("mode", mode, MODES)
    check_choice("init", init, INITS)
    check_positive("steps", steps)
    if not batch_fns:
        raise NeumoError("The 'batch_fns' parameter must list at least one task's batch function.")
    rows: dict[str, list[torch.Tensor]] = {}
    for fn in batch_fns:
        model = model_fn()
        model.load_state_dict(base_state)
        before = layer_weights(model)
        if mode == "lora":
            apply_lora(model, rank, init, targets=targets, seed=seed)
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=lr)
        for step in range(steps):
            opt.zero_grad(set_to_none=True)
            _loss(loss_fn, model, fn(step)).backward()
            opt.step()
        after = layer_weights(model)
        if on_task is not None:
            on_task(len(next(iter(rows.values()), [])), model)
        for name, w0 in before.items():
            rows.setdefault(name, []).append((after[name] - w0).reshape(-1))
    return {name: torch.stack(r) for name, r in rows.items()}


@dataclass(frozen=True)
class SharedSubspace:
    scree: torch.Tensor  # (n,) explained-energy ratio per component, descending, sums to 1
    n_components: int  # fewest components holding ``share`` of the energy
    share: float
    basis: torch.Tensor  # (P, k) top-k principal directions (columns)
    angles: torch.Tensor | None  # principal angles (radians, ascending) to the reference, if given


def shared_subspace(
    updates, k: int, reference: torch.Tensor | SharedSubspace | None = None, *, share: float = 0.9, center: bool = False
) -> SharedSubspace:
    """PCA of stacked updates ((n, ...) or a list): scree, components for ``share`` energy, top-k basis and
    principal angles to ``reference`` (a (P, j) basis or another :class:`SharedSubspace`)."""
    if not 0 < share <= 1:
        raise NeumoError(f"The 'share' parameter must be in (0, 1]. Got {share!r} instead.")
    pca = update_pca(updates, center=center)
    n = pca.components.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n:
        raise NeumoError(
            f"The 'k' parameter must be an integer in [1, {n}] (the number of components). Got {k!r} instead."
        )
    basis = pca.components[:k].T
    ref = reference.basis if isinstance(reference, SharedSubspace) else reference
    angles = None if ref is None else principal_angles(basis, ref)
    return SharedSubspace(pca.explained_variance_ratio, pca.n_components(share), share, basis, angles)


class SubspaceLinear(nn.Module):
    weight0: torch.Tensor
    bias0: torch.Tensor | None
    basis: torch.Tensor
    """A linear layer whose weight is confined to an affine subspace: W = W_base + sum_j c_j B_j.

    ``basis`` is (out * in, r) (columns: flattened directions, e.g. ``SharedSubspace.basis``); only the r
    coefficients ``c`` (zero at construction, so the output equals the base's) are trainable; the base
    weight and bias are frozen copies.
    """

    def __init__(self, base: nn.Linear, basis: torch.Tensor):
        super().__init__()
        basis = torch.as_tensor(basis).detach()
        if basis.dim() != 2 or basis.shape[0] != base.weight.numel():
            raise NeumoError(
                f"The 'basis' parameter must be a ({base.weight.numel()}, r) matrix (flattened "
                f"directions of the {tuple(base.weight.shape)} weight). Got shape "
                f"{tuple(basis.shape)} instead."
            )
        self.register_buffer("weight0", base.weight.detach().clone())
        self.register_buffer("bias0", None if base.bias is None else base.bias.detach().clone())
        self.register_buffer("basis", basis.to(base.weight.dtype).clone())
        self.coef = nn.Parameter(torch.zeros(basis.shape[1], dtype=base.weight.dtype))

    def weight(self) -> torch.Tensor:  # (out, in)
        return self.weight0 + (self.basis @ self.coef).view_as(self.weight0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        return torch.nn.functional.linear(x, self.weight(), self.bias0)


def confine_to_subspace(model: nn.Module, layer: str, basis: torch.Tensor) -> SubspaceLinear:
    """Replace the ``nn.Linear`` named ``layer`` by a :class:`SubspaceLinear` on ``basis`` and freeze every
    other parameter; returns the new module (its ``coef`` is the only trainable parameter)."""
    parent_name, _, child = layer.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, child, None)
    if not isinstance(old, nn.Linear):
        raise NeumoError(f"The 'layer' parameter must name an nn.Linear module of the model. Got {layer!r} instead.")
    for p in model.parameters():
        p.requires_grad_(False)
    new = SubspaceLinear(old, basis)
    setattr(parent, child, new)
    return new


__all__ = [
    "MODES",
    "layer_weights",
    "task_updates",
    "shared_subspace",
    "SharedSubspace",
    "SubspaceLinear",
    "confine_to_subspace",
]
