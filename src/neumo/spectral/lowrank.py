"""Low-rank adapters: LoRA, PiSSA and MiLoRA initialisations, merging, ReLoRA restarts.

A :class:`LoRALinear` wraps a frozen ``nn.Linear`` (weight W, (out, in)) and adds a trainable
``s * B A`` with ``A``: (r, in), ``B``: (out, r) and ``s = alpha / r`` (``alpha`` defaults to ``r``):

- ``lora`` (Hu et al. 2021): B = 0, A ~ U(-1/sqrt(in), 1/sqrt(in)) from an explicit generator; the
  output equals the base layer's at initialisation.
- ``pissa`` (Meng et al. 2024): with W = U S V^T (float64 SVD), the top-r triplets give
  B = U_r S_r^{1/2} / sqrt(s), A = S_r^{1/2} V_r^T / sqrt(s), and the frozen base becomes the residual
  W - U_r S_r V_r^T, so that residual + s B A = W (to float rounding).
- ``milora`` (Wang et al. 2024): the same construction on the bottom-r triplets (the r smallest
  singular values of the min(out, in) kept by a reduced SVD).

``apply_lora(model, rank, init)`` swaps the selected ``nn.Linear`` modules of any model for adapters in
place and freezes every other parameter. :class:`ReLoRA` (Lialin et al. 2023) merges the adapters into
the base every ``every`` steps, restarts them (new A from a new generator stream, B = 0), resets their
optimizer state and can warm the learning rate up again after each restart, so that the accumulated
update is a sum of rank-r pieces and its rank can exceed r. The factorised layer W = A B with Stiefel
retractions lives in :mod:`neumo.spectral.factorized` and is re-exported here.
"""

from __future__ import annotations

import fnmatch
import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from neumo.errors import NeumoError, check_choice, check_positive
from neumo.seeding import as_generator, make_generator
from neumo.spectral.factorized import FactorizedLinear, check_rank
from neumo.train.callbacks import Callback

INITS = ("lora", "pissa", "milora")
RESETS = ("zero", "prune")
_FIRST_MOMENTS = ("exp_avg", "momentum_buffer")  # the state tensor whose magnitude ranks the entries to keep


class LoRALinear(nn.Module):
    """y = base(x) + s * x A^T B^T; A: (r, in), B: (out, r), s = alpha / r. The base is frozen."""

    def __init__(
        self,
        base: nn.Linear,
        rank: int,
        alpha: float | None = None,
        init: str = "lora",
        seed: int | torch.Generator = 0,
    ):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise NeumoError(f"LoRALinear wraps an nn.Linear; got {type(base).__name__}")
        check_choice("init", init, INITS)
        check_rank(rank, base.out_features, base.in_features)
        if alpha is not None:
            check_positive("alpha", alpha)
        self.base, self.rank, self.init = base, rank, init
        self.alpha = float(rank if alpha is None else alpha)
        self.scaling = self.alpha / rank
        self.merged = False
        w = base.weight
        self.lora_A = nn.Parameter(torch.zeros(rank, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=w.dtype, device=w.device))
        for p in base.parameters():
            p.requires_grad_(False)
        self._initialise(as_generator(seed, "lora"))

    @torch.no_grad()
    def _lora_init(self, g: torch.Generator) -> None:
        bound = 1.0 / math.sqrt(self.base.in_features)  # kaiming_uniform(a=sqrt(5)), as nn.Linear and PEFT
        a = torch.rand(self.lora_A.shape, generator=g, dtype=torch.float64) * 2 * bound - bound
        self.lora_A.copy_(a)
        self.lora_B.zero_()

    @torch.no_grad()
    def _initialise(self, g: torch.Generator) -> None:
        if self.init == "lora":
            self._lora_init(g)
            return
        W = self.base.weight
        U, S, Vh = torch.linalg.svd(W.double(), full_matrices=False)  # (out, k), (k,), (k, in)
        k = S.shape[0]
        idx = slice(0, self.rank) if self.init == "pissa" else slice(k - self.rank, k)
        Ur, Sr, Vhr = U[:, idx], S[idx], Vh[idx]
        root = (Sr / self.scaling).sqrt()  # s * B A = U_r S_r V_r^T
        self.lora_B.copy_(Ur * root)
        self.lora_A.copy_(root[:, None] * Vhr)
        W.copy_(W.double() - (Ur * Sr) @ Vhr)  # the frozen residual

    def delta_weight(self) -> torch.Tensor:
        """s * B A, (out, in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    @torch.no_grad()
    def merge(self) -> None:
        """Add s B A into the base weight; forward then runs the base alone. No-op when merged."""
        if not self.merged:
            self.base.weight.add_(self.delta_weight())
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Undo :meth:`merge` (exact up to float rounding). No-op when not merged."""
        if self.merged:
            self.base.weight.sub_(self.delta_weight())
            self.merged = False

    @torch.no_grad()
    def restart_(self, generator: torch.Generator) -> None:
        """ReLoRA restart: fold s B A into the base for good, then A fresh from ``generator`` and B = 0."""
        if not self.merged:
            self.base.weight.add_(self.delta_weight())
        self.merged = False
        self._lora_init(generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        y = self.base(x)
        if self.merged:
            return y
        return y + self.scaling * F.linear(F.linear(x, self.lora_A), self.lora_B)  # (..., r) -> (..., out)

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}, init={self.init!r}, merged={self.merged}"


# ---------------------------------------------------------------------------------------------- models

Targets = None | str | Sequence[str] | Callable[[str, nn.Module], bool]


def _selected(model: nn.Module, targets: Targets) -> list[tuple[str, nn.Linear]]:
    wrapped = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    linears = [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and not any(n.startswith(w + ".") for w in wrapped)
    ]
    if targets is None:
        chosen = linears
    elif callable(targets):
        chosen = [(n, m) for n, m in linears if targets(n, m)]
    else:
        patterns = [targets] if isinstance(targets, str) else list(targets)
        chosen = [(n, m) for n, m in linears if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if not chosen:
        names = ", ".join(repr(n) for n, _ in linears[:12]) or "none"
        raise NeumoError(
            f"The 'targets' parameter selected no nn.Linear module; the model's unwrapped "
            f"nn.Linear modules are: {names}. Pass glob patterns over these names."
        )
    if any(n == "" for n, _ in chosen):
        raise NeumoError("the model itself is an nn.Linear: wrap it directly with LoRALinear(model, rank)")
    return chosen


def _owners(model: nn.Module) -> dict[int, list[str]]:
    owners: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        for _, p in module.named_parameters(recurse=False):
            owners.setdefault(id(p), []).append(name)
    return owners


def apply_lora(
    model: nn.Module,
    rank: int,
    init: str = "lora",
    *,
    targets: Targets = None,
    alpha: float | None = None,
    seed: int | torch.Generator = 0,
) -> list[str]:
    """Replace the selected ``nn.Linear`` modules of ``model`` by :class:`LoRALinear` (in place).

    ``targets``: None (every nn.Linear), glob pattern(s) over module names (``"blocks.*.attn.qkv"``) or
    a callable ``(name, module) -> bool``. Every parameter of the model is frozen except the adapters.
    Each adapter draws from ``make_generator(seed, "lora", name)``. Returns the wrapped module names.
    Everything is validated before the model is touched.
    """
    check_choice("init", init, INITS)
    chosen = _selected(model, targets)
    owners = _owners(model)
    for name, lin in chosen:
        check_rank(rank, lin.out_features, lin.in_features, where=repr(name))
        shared = owners.get(id(lin.weight), [])
        if len(shared) > 1:
            raise NeumoError(
                f"the weight of {name!r} is shared with {', '.join(repr(s) for s in shared if s != name)} "
                f"(tied weights); merging would change both. Exclude it with 'targets'."
            )
    for p in model.parameters():
        p.requires_grad_(False)
    for name, lin in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        g = seed if isinstance(seed, torch.Generator) else make_generator(int(seed), "lora", name)
        setattr(parent, child, LoRALinear(lin, rank, alpha=alpha, init=init, seed=g))
    return [n for n, _ in chosen]


def lora_modules(model: nn.Module) -> dict[str, LoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The adapter parameters (A and B of every :class:`LoRALinear`), in module order."""
    return [p for m in lora_modules(model).values() for p in (m.lora_A, m.lora_B)]


def merge_lora(model: nn.Module) -> None:
    for m in lora_modules(model).values():
        m.merge()


def unmerge_lora(model: nn.Module) -> None:
    for m in lora_modules(model).values():
        m.unmerge()


# ---------------------------------------------------------------------------------------------- ReLoRA


def relora_lr_multiplier(
    step: int, every: int, restart_warmup: int = 0, schedule: Callable[[int], float] | None = None
) -> float:
    """Learning-rate factor for optimizer step ``step`` (from 1): ``schedule(step)`` (default 1) times a
    linear warm-up over the ``restart_warmup`` steps after each restart (none before the first)."""
    base = 1.0 if schedule is None else float(schedule(step))
    if restart_warmup <= 0 or step <= every:
        return base
    since = (step - 1) % every  # 0 on the first step after a restart
    return base * min(1.0, (since + 1) / restart_warmup)


class ReLoRA(Callback):
    """Merge-and-restart schedule for the LoRA adapters of ``model`` (Lialin et al. 2023, ReLoRA).

    Call :meth:`step` after every ``optimizer.step()`` (or pass it to ``neumo.train.Trainer`` as a
    callback: it runs in ``on_after_optimizer_step``). After every ``every`` steps it merges each adapter
    into its base, draws a new A from ``make_generator(seed, "relora", name, k)`` (k = restart number,
    from 1) with B = 0, and resets the optimizer state of the adapter parameters: every state tensor of
    the parameter's shape (Adam's ``exp_avg`` / ``exp_avg_sq``, SGD's ``momentum_buffer``) is zeroed
    (``reset="zero"``) or magnitude-pruned (``reset="prune"``, the paper's partial reset): the entries with
    the largest ``1 - prune_ratio`` share of |first moment| (``exp_avg``, else ``momentum_buffer``) keep
    *all* their state (m and v together, so m / sqrt(v) stays bounded), the others are zeroed in every
    moment; step counters are kept. ReLoRA owns the learning
    rate: it sets ``lr = base_lr * relora_lr_multiplier(step, ...)`` for the next step, so give an outer
    schedule as ``schedule`` rather than as a separate scheduler.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        every: int,
        *,
        seed: int = 0,
        reset: str = "zero",
        prune_ratio: float = 0.99,
        restart_warmup: int = 0,
        schedule: Callable[[int], float] | None = None,
    ):
        check_positive("every", every)
        check_choice("reset", reset, RESETS)
        if not 0.0 <= prune_ratio < 1.0:
            raise NeumoError(f"The 'prune_ratio' parameter must be in [0, 1). Got {prune_ratio!r} instead.")
        check_positive("restart_warmup", restart_warmup, allow_zero=True)
        self.modules = lora_modules(model)
        if not self.modules:
            raise NeumoError("ReLoRA found no LoRALinear module in the model; call apply_lora(model, rank) first")
        self.optimizer, self.every, self.seed = optimizer, int(every), int(seed)
        self.reset, self.prune_ratio, self.restart_warmup, self.schedule = reset, prune_ratio, restart_warmup, schedule
        self.base_lrs = [g.setdefault("initial_lr", g["lr"]) for g in optimizer.param_groups]  # as torch schedulers
        self.steps = 0
        self.restarts = 0
        self._set_lr(1)

    def lr_multiplier(self, step: int) -> float:
        return relora_lr_multiplier(step, self.every, self.restart_warmup, self.schedule)

    def _set_lr(self, step: int) -> None:
        m = self.lr_multiplier(step)
        for group, lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = lr * m

    def step(self) -> None:
        self.steps += 1
        if self.steps % self.every == 0:
            self.restart()
        self._set_lr(self.steps + 1)

    @torch.no_grad()
    def restart(self) -> None:
        self.restarts += 1
        for name, m in self.modules.items():
            m.restart_(make_generator(self.seed, "relora", name, self.restarts))
            for p in (m.lora_A, m.lora_B):
                self._reset_state(p)

    def _reset_state(self, p: torch.Tensor) -> None:
        state = self.optimizer.state.get(p, {})
        tensors = {k: t for k, t in state.items() if torch.is_tensor(t) and t.shape == p.shape}
        if not tensors:
            return
        keep = max(0, round((1 - self.prune_ratio) * p.numel()))
        if self.reset == "zero" or keep == 0:
            for t in tensors.values():
                t.zero_()
            return
        # one mask for every moment of the parameter: pruning Adam's m and v separately keeps entries whose m
        # survives while their v is zeroed, and m / (sqrt(v) + eps) then steps by about m / eps (divergence)
        key = next((k for k in _FIRST_MOMENTS if k in tensors), next(iter(tensors)))
        score = tensors[key].abs().flatten()
        mask = torch.zeros(score.numel(), dtype=torch.bool, device=score.device)
        mask[torch.topk(score, keep, sorted=False).indices] = True
        mask = mask.view(p.shape)
        for t in tensors.values():
            t.mul_(mask)

    def on_after_optimizer_step(self, trainer, state) -> None:
        self.step()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Counters for ``neumo.train`` checkpoints (the merged weights are in the model's state)."""
        return {"steps": torch.tensor(self.steps), "restarts": torch.tensor(self.restarts)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if tensors:
            self.steps, self.restarts = int(tensors["steps"]), int(tensors["restarts"])
            self._set_lr(self.steps + 1)


__all__ = [
    "INITS",
    "RESETS",
    "LoRALinear",
    "apply_lora",
    "lora_modules",
    "lora_parameters",
    "merge_lora",
    "unmerge_lora",
    "ReLoRA",
    "relora_lr_multiplier",
    "check_rank",
    "FactorizedLinear",
]
