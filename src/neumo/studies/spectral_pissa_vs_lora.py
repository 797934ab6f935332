"""S-pissa-vs-lora: does PiSSA fine-tune faster than LoRA at equal rank, each at its own best learning rate?

Setup (pinned): digits in [0, 1] (seeded 80/20 split); a base MLP 64-h-h-10 ReLU pretrained on digits with
full-batch Adam; the fine-tuning task is the *mirrored* digits (each 8x8 image flipped left-right, same
labels), an input-distribution shift that the first layer has to absorb (the base model's loss on it is
~6 nats). Fine-tuning: the first ``n_finetune`` training images, full-batch Adam for ``steps`` steps,
cross-entropy (``task="relabelled"``: the same images with labels y -> y + 1 mod 10 instead, a task whose
features the base already has; not the judged default); every ``nn.Linear`` gets a rank-``rank`` adapter (``apply_lora``, alpha = r so s = 1):

- ``pissa`` (the treatment, Meng et al. 2024): adapters on the top-r singular triplets, residual frozen;
- ``lora`` (Hu et al. 2021): B = 0, A uniform;
- ``milora`` (Wang et al. 2024): adapters on the bottom-r singular triplets;
- ``random_pissa``: PiSSA's construction with the top-r singular *values* but random orthonormal singular
  vectors (residual W - U_rand S_r V_randᵀ, so the function at initialisation is the base's): an adapter
  of PiSSA's norm in directions that carry nothing of W;
- ``full``: full fine-tuning of every parameter (reported; a competence reference).

Every method gets its own learning-rate sweep over ``lrs``. The loss is the full-batch training loss
after each step (deterministic given the seed). Per method: steps to the target loss at the learning rate
that reaches it first (ties: lower final loss), and final loss at the learning rate with the lowest final
loss. All inits and nulls are computed inside one unit (inline nulls) from the same base model.

A seed changes the split, the base model's initialisation (hence its pretrained weights), LoRA's A and the
random singular vectors.
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from neumo.config import StrictModel
from neumo.seeding import make_generator
from neumo.spectral.factorized import qr_positive
from neumo.spectral.lowrank import apply_lora, lora_modules, lora_parameters
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import full_batch_adam, mirrored, pretrained_digits_mlp

METHODS = ("pissa", "lora", "milora", "random_pissa", "full")


class PissaVsLoraThresholds(Thresholds):
    max_steps_ratio: float = Field(
        0.8,
        description="'converges faster' = reaches the target in at most 80% of "
        "LoRA's steps (a 20% saving is the smallest a practitioner "
        "would call faster; fixed before the first run)",
    )
    min_milora_steps_ratio: float = Field(
        0.8,
        description="'MiLoRA no faster than LoRA' = MiLoRA does not save "
        "20% of LoRA's steps (the same factor, mirrored)",
    )
    min_base_test_acc: float = Field(0.9, description="competence gate: the base model learned digits")
    min_reached: float = Field(
        1.0,
        description="competence gate: LoRA and full fine-tuning reach the target "
        "at their best learning rate (else steps are censored)",
    )
    min_bracketed: float = Field(
        1.0,
        description="competence gate: every method's best learning rate is "
        "inside the sweep, not at its edge (the sweep found it)",
    )


class PissaVsLoraConfig(StrictModel):
    hidden: list[int] = [64, 64]
    pretrain_steps: int = Field(300, ge=1)
    pretrain_lr: float = Field(3e-3, gt=0)
    n_finetune: int = Field(1437, ge=10)
    task: Literal["mirrored", "relabelled"] = Field(
        "mirrored",
        description="the fine-tuning task: mirrored "
        "images (same labels), or the same images with every label "
        "shifted by one class (an alternative, not the judged default)",
    )
    rank: int = Field(4, ge=1)
    steps: int = Field(300, ge=1)
    lrs: list[float] = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]
    target_loss: float = Field(0.3, gt=0, description="nats: ~90% training accuracy on the mirrored digits")
    thresholds: PissaVsLoraThresholds = PissaVsLoraThresholds()


@torch.no_grad()
def randomise_singular_vectors_(model: torch.nn.Module, seed: int) -> None:
    """For every PiSSA adapter: keep its singular values, replace its singular vectors by random orthonormal
    ones (QR of Gaussians from ``make_generator(seed, "random-pissa", name)``) and refreeze the residual, so
    that residual + s B A is still the original W."""
    for name, mod in lora_modules(model).items():
        g = make_generator(seed, "random-pissa", name)
        W = mod.base.weight.double() + mod.delta_weight().double()  # the original weight
        S = torch.linalg.svdvals(mod.delta_weight().double())[: mod.rank]  # PiSSA's top-r singular values
        U = qr_positive(torch.randn(W.shape[0], mod.rank, generator=g, dtype=torch.float64))[0]
        V = qr_positive(torch.randn(W.shape[1], mod.rank, generator=g, dtype=torch.float64))[0]
        root = (S / mod.scaling).sqrt()
        mod.lora_B.copy_(U * root)
        mod.lora_A.copy_(root[:, None] * V.T)
        mod.base.weight.copy_(W - (U * S) @ V.T)


def adapted(base: torch.nn.Module, method: str, rank: int, seed: int):
    """A copy of ``base`` ready to fine-tune with ``method``; returns (model, trainable parameters)."""
    m = copy.deepcopy(base)
    if method == "full":
        return m, list(m.parameters())
    apply_lora(m, rank, init="pissa" if method == "random_pissa" else method, seed=seed)
    if method == "random_pissa":
        randomise_singular_vectors_(m, seed)
    return m, lora_parameters(m)


def steps_to(losses: list[float], target: float) -> int | None:
    """Optimizer steps taken when the loss first is <= target (0 = before any step); None if never."""
    return next((i for i, v in enumerate(losses) if math.isfinite(v) and v <= target), None)


def best_of_sweep(curves: dict[float, list[float]], target: float, steps: int) -> dict[str, float]:
    """Steps to target at the fastest learning rate and final loss at the best-ending one."""
    lrs = sorted(curves)
    final = {lr: (c[-1] if math.isfinite(c[-1]) else math.inf) for lr, c in curves.items()}
    hit = {lr: steps_to(c, target) for lr, c in curves.items()}
    reached = [lr for lr in lrs if hit[lr] is not None]
    lr_fast = min(reached, key=lambda lr: (hit[lr], final[lr])) if reached else None
    lr_final = min(lrs, key=lambda lr: final[lr])
    inside = lr_fast is not None and lrs[0] < lr_fast < lrs[-1] and lrs[0] < lr_final < lrs[-1]
    steps_fast = hit[lr_fast] if lr_fast is not None else None
    return {
        "steps_to_target": float(steps_fast) if steps_fast is not None else float(steps + 1),
        "reached": float(lr_fast is not None),
        "best_lr_steps": lr_fast if lr_fast is not None else 0.0,
        "final_loss": final[lr_final],
        "best_lr_final": lr_final,
        "bracketed": float(inside),
    }


@register_study
class PissaVsLora(Study):
    id = "S-pissa-vs-lora"
    instrument = "spectral"
    claim = (
        "At equal rank and each at its own best learning rate, PiSSA fine-tuning reaches a target loss in "
        "at most 80% of LoRA's steps, and MiLoRA does not (it is no faster than LoRA)."
    )
    citation = (
        "Meng, Wang & Zhang (2024) PiSSA, NeurIPS; Wang et al. (2024) MiLoRA (PiSSA's edge only at low "
        "learning rates); Hu et al. (2021) LoRA; the first essay's low-rank argument"
    )
    Config = PissaVsLoraConfig
    presets = {"quick": {"n_finetune": 512, "steps": 150, "lrs": [3e-3, 1e-2, 3e-2, 1e-1, 3e-1]}, "full": {}}
    nulls = {
        "lora": "LoRA (B = 0, A uniform) at the same rank, its own learning-rate sweep (inline)",
        "milora": "MiLoRA (bottom-r singular triplets), its own sweep (inline)",
        "random_pissa": "PiSSA's singular values on random orthonormal singular vectors, residual refrozen "
        "(the same adapter norm without W's principal directions), its own sweep (inline)",
        "full": "full fine-tuning of every parameter, its own sweep (inline; a reference)",
    }
    replication = (
        "the seed sets the digits split, the base model's initialisation (so its pretrained "
        "weights), LoRA's A and the random singular vectors; training is full-batch"
    )
    quick_cost_s = 17.0

    def checks(self, cfg):
        return [
            CheckSpec(
                "pissa_steps_over_lora",
                "steps_to_target",
                "<=",
                "max_steps_ratio",
                null="lora",
                controls=("random_pissa",),
                label="steps to target, PiSSA / LoRA (each at its best learning rate)",
            ),
            CheckSpec(
                "milora_steps_over_lora",
                "milora_steps_over_lora",
                ">=",
                "min_milora_steps_ratio",
                label="steps to target, MiLoRA / LoRA (each at its best learning rate)",
            ),
        ]

    def preconditions(self, cfg):
        return [
            GateSpec("base_test_acc", "base_test_acc", ">=", "min_base_test_acc", why="the base model learned digits"),
            GateSpec("lora_reached", "lora_reached", ">=", "min_reached", why="LoRA reached the target"),
            GateSpec("full_reached", "full_reached", ">=", "min_reached", why="full fine-tuning reached it"),
            GateSpec(
                "all_bracketed",
                "all_bracketed",
                ">=",
                "min_bracketed",
                why="every method's best learning rate lies inside the sweep",
            ),
        ]

    def measure(self, cfg: PissaVsLoraConfig, ctx: StudyContext) -> Measurement:
        base, x, y, _, base_acc = pretrained_digits_mlp(ctx.seed, cfg.hidden, cfg.pretrain_steps, cfg.pretrain_lr)
        xf, yf = x[: cfg.n_finetune], y[: cfg.n_finetune]
        xf, yf = (mirrored(xf), yf) if cfg.task == "mirrored" else (xf, (yf + 1) % 10)
        with torch.no_grad():
            start = float(F.cross_entropy(base(xf), yf))
        per: dict[str, dict[str, float]] = {}
        curves_at_best: dict[str, list[float]] = {}
        rows = []
        for method in METHODS:
            curves = {}
            for lr in cfg.lrs:
                model, params = adapted(base, method, cfg.rank, ctx.seed)
                curves[lr] = full_batch_adam(model, params, xf, yf, lr, cfg.steps)
                hit = steps_to(curves[lr], cfg.target_loss)
                rows.append({"method": method, "lr": lr, "steps_to_target": hit, "final_loss": curves[lr][-1]})
            per[method] = best_of_sweep(curves, cfg.target_loss, cfg.steps)
            lr_best = per[method]["best_lr_steps"]
            curves_at_best[method] = curves[lr_best if lr_best > 0 else per[method]["best_lr_final"]]
        lo = min(cfg.lrs)
        at_lo = {r["method"]: r for r in rows if r["lr"] == lo}
        values = {
            **per["pissa"],
            "base_test_acc": base_acc,
            "finetune_start_loss": start,
            "lora_reached": per["lora"]["reached"],
            "full_reached": per["full"]["reached"],
            "all_bracketed": float(all(p["bracketed"] for p in per.values())),
            "milora_steps_over_lora": per["milora"]["steps_to_target"] / per["lora"]["steps_to_target"],
            "lowest_lr_final_pissa": at_lo["pissa"]["final_loss"],
            "lowest_lr_final_lora": at_lo["lora"]["final_loss"],
        }
        if ctx.keep_figures:
            ctx.save_figure("loss_at_best_lr", _figure(curves_at_best, cfg.target_loss, cfg.task))
        return Measurement(values=values, nulls={m: per[m] for m in METHODS if m != "pissa"}, tables={"sweep": rows})

    def summarize(self, cfg, m):
        g = lambda k: m.get(k, float("nan"))  # noqa: E731
        return (
            f"steps to loss {cfg.target_loss:g} at each method's best learning rate: PiSSA "
            f"{g('steps_to_target'):.1f}, LoRA {g('lora:steps_to_target'):.1f}, MiLoRA "
            f"{g('milora:steps_to_target'):.1f}, random-vector PiSSA {g('random_pissa:steps_to_target'):.1f}, "
            f"full {g('full:steps_to_target'):.1f}; final loss PiSSA {g('final_loss'):.3g}, LoRA "
            f"{g('lora:final_loss'):.3g}; at the lowest learning rate PiSSA ends at "
            f"{g('lowest_lr_final_pissa'):.3g} vs LoRA {g('lowest_lr_final_lora'):.3g} (seed means)"
        )


def _figure(curves: dict[str, list[float]], target: float, task: str):
    from neumo.report.figures import line_plot

    fig, _ = line_plot(
        {m: (list(range(len(c))), c) for m, c in curves.items()},
        xlabel="step",
        ylabel="training loss (nats)",
        title=f"{task} digits, best learning rate of each",
        logy=True,
        hlines={"target": target},
    )
    return fig


__all__ = [
    "PissaVsLora",
    "PissaVsLoraConfig",
    "adapted",
    "best_of_sweep",
    "mirrored",
    "randomise_singular_vectors_",
    "steps_to",
]
