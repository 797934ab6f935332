"""S-shared-subspace: fine-tuning updates share a low-dimensional subspace only when they start from one W_0.

A critique of the Universal Weight Subspace Hypothesis (Kaushik et al. 2025): a few principal directions
holding most of the energy of many models' weights or updates is expected whenever the models share an
initialisation, and need not be universal.

Setup (pinned): digits in [0, 1]; MLP 64-32-32-10 ReLU pretrained on the 10-class base task (Adam); the
task family is one-vs-rest: task c labels an image 1 if it shows digit c and 0 otherwise, read from the
same 10-way head (cross-entropy, so the other eight logits are pushed down too). The seed draws which
``n_heldout`` digits are held out; the other ``n_tasks`` are the training tasks. Each task fine-tunes the
whole network (Adam, ``finetune_steps``), and the analysed layer is the hidden 32 x 32 ``net.2``:

- ``same init`` (the treatment): the n tasks fine-tuned from ONE pretrained base W_0, updates W_i - W_0;
- ``different_init`` (inline null): the same n tasks, task i from its own base pretrained from its own
  random initialisation, updates W_i - W_0^(i);
- ``untrained`` (inline null, the replication's null): the layer's weights of n untrained networks at
  their random initialisations, PCA'd as Kaushik et al. PCA weights;
- ``random_update`` (inline null): n i.i.d. Gaussian updates, each of the same Frobenius norm as the
  treatment's update of that task.

Each stack gets an uncentred PCA (:func:`neumo.spectral.finetune.shared_subspace`): the scree, the
components for 90% of the energy and the share of the top ``rank`` components. The top-``k_hessian``
eigenvectors of the base task's Hessian at W_0, restricted to the analysed layer (Lanczos in float64 on
``n_hessian`` training samples), give the curvature subspace; its overlap with each stack's top-``rank``
subspace is reported as a multiple of chance (``k_hessian / P`` for a random subspace). On the held-out
tasks (only the analysed layer adapts, everything else frozen), fine-tuning confined to the shared top-
``rank`` subspace (``rank`` coefficients) is compared with adding the mean update (no training), a rank-
``rank`` LoRA and full fine-tuning of the layer, by balanced test accuracy; and the share of each held-out
task's full-network update that the same-init / different-init subspaces capture.
"""

from __future__ import annotations

import copy

import torch
from pydantic import Field

from neumo.config import StrictModel
from neumo.data.digits import minibatches
from neumo.seeding import derive_seed, make_generator
from neumo.spectral.curvature import HessianOperator, lanczos
from neumo.spectral.finetune import confine_to_subspace, shared_subspace, task_updates
from neumo.spectral.lowrank import apply_lora
from neumo.spectral.subspace import principal_angles, subspace_overlap
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import cross_entropy, digits, digits_mlp
from neumo.train import Trainer, TrainConfig, make_optimizer

STACKS = ("same", "different_init", "untrained", "random_update")
METHODS = ("base", "mean_update", "subspace", "lora", "full_layer")


class SharedSubspaceThresholds(Thresholds):
    min_top_share_over_random: float = Field(
        2.0,
        description="'a strong shared subspace': the top-rank "
        "components hold at least twice the energy share they hold for "
        "random updates of the same norms (a principled factor)",
    )
    max_different_over_random: float = Field(
        1.5,
        description="'only from a shared init': different inits "
        "stay closer to chance (1) than to the 'strong' factor 2",
    )
    min_hessian_over_chance: float = Field(
        10.0,
        description="'aligns with W_0's top curvature': the shared "
        "subspace's overlap with the top Hessian eigenvectors is at least "
        "an order of magnitude above a random subspace's",
    )
    min_hessian_over_different: float = Field(
        2.0,
        description="... and at least twice the overlap of the "
        "different-init subspace (what any trained update of this layer "
        "shares through its inputs), the same factor as above",
    )
    min_capture_over_different: float = Field(
        2.0,
        description="the shared subspace generalises: it captures "
        "at least twice the held-out updates' energy the different-init "
        "subspace captures (the same factor)",
    )
    min_base_acc: float = Field(
        0.9,
        description="competence gate: every pretrained base learned the 10 digits "
        "(test accuracy; a principled floor for digits)",
    )
    min_task_bacc: float = Field(
        0.9,
        description="competence gate: every fine-tuned task (both stacks) and the "
        "held-out full-layer fine-tuning learned its one-vs-rest task "
        "(worst balanced test accuracy)",
    )
    min_converged_fraction: float = Field(1.0, description="competence gate: the Hessian Lanczos converged")


class SharedSubspaceConfig(StrictModel):
    hidden: list[int] = [32, 32]
    layer: str = "net.2"
    n_tasks: int = Field(8, ge=3, le=9)
    n_heldout: int = Field(2, ge=1, le=7)
    pretrain_steps: int = Field(800, ge=1)
    pretrain_lr: float = Field(3e-3, gt=0)
    finetune_steps: int = Field(200, ge=1)
    finetune_lr: float = Field(1e-2, gt=0)
    heldout_steps: int = Field(200, ge=1)
    heldout_lr: float = Field(1e-2, gt=0)
    rank: int = Field(2, ge=1)
    k_hessian: int = Field(10, ge=1)
    n_hessian: int = Field(1000, ge=10)
    lanczos_tol: float = Field(1e-4, gt=0)
    batch_size: int = Field(64, ge=1)
    thresholds: SharedSubspaceThresholds = SharedSubspaceThresholds()


def one_vs_rest(y: torch.Tensor, digit: int) -> torch.Tensor:
    return (y == digit).long()


def balanced_accuracy(model, x: torch.Tensor, y01: torch.Tensor) -> float:
    """Mean recall of the two classes, read from logits 0 ("rest") and 1 ("the digit") of the 10-way head."""
    with torch.no_grad():
        hit = (model(x)[:, :2].argmax(1) == y01).double()
    return float(0.5 * (hit[y01 == 1].mean() + hit[y01 == 0].mean()))


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def pretrain(cfg: SharedSubspaceConfig, seed: int, x, y):
    model = digits_mlp(seed, cfg.hidden)
    opt = make_optimizer(model.parameters(), TrainConfig(optimizer="adam", lr=cfg.pretrain_lr))
    Trainer(model, opt, cross_entropy, minibatches(x, y, cfg.batch_size, seed), cfg.pretrain_steps).fit()
    return model


def balanced_batches(x: torch.Tensor, y01: torch.Tensor, batch_size: int, seed: int):
    """``batch_fn(step)``: half the batch drawn (with replacement) from the positives, half from the rest."""
    pos, neg = torch.nonzero(y01 == 1).flatten(), torch.nonzero(y01 == 0).flatten()

    def batch_fn(step: int):
        g = make_generator(seed, "balanced-batch", step)
        half = batch_size // 2
        idx = torch.cat(
            [
                pos[torch.randint(0, len(pos), (half,), generator=g)],
                neg[torch.randint(0, len(neg), (batch_size - half,), generator=g)],
            ]
        )
        return x[idx], y01[idx]

    return batch_fn


def _task_batches(cfg, seed: int, x, y, digits_: list[int]):
    return [balanced_batches(x, one_vs_rest(y, c), cfg.batch_size, derive_seed(seed, "task", c)) for c in digits_]


def _stacks(cfg, ctx, x, y, d, tasks):
    """The four stacks, the shared base, and competence numbers."""
    base = pretrain(cfg, derive_seed(ctx.seed, "base"), x, y)
    accs = {"base_acc_min": _accuracy(base, d.x_test, d.y_test)}
    model_fn = lambda: digits_mlp(0, cfg.hidden)  # noqa: E731
    baccs: list[float] = []

    def evaluate(digit):
        return lambda i, m: baccs.append(balanced_accuracy(m, d.x_test, one_vs_rest(d.y_test, digit)))

    same_all = task_updates(
        model_fn,
        base.state_dict(),
        _task_batches(cfg, ctx.seed, x, y, tasks),
        cross_entropy,
        steps=cfg.finetune_steps,
        lr=cfg.finetune_lr,
        on_task=lambda i, m: evaluate(tasks[i])(i, m),
    )
    diff_rows = []
    for i, c in enumerate(tasks):
        b = pretrain(cfg, derive_seed(ctx.seed, "other-base", i), x, y)
        accs["base_acc_min"] = min(accs["base_acc_min"], _accuracy(b, d.x_test, d.y_test))
        up = task_updates(
            model_fn,
            b.state_dict(),
            _task_batches(cfg, ctx.seed, x, y, [c]),
            cross_entropy,
            steps=cfg.finetune_steps,
            lr=cfg.finetune_lr,
            on_task=evaluate(c),
        )
        diff_rows.append(up[cfg.layer][0])
    same = same_all[cfg.layer]
    g = make_generator(ctx.seed, "random-update")
    rand = torch.randn(same.shape, generator=g, dtype=same.dtype)
    rand = rand / rand.norm(dim=1, keepdim=True) * same.norm(dim=1, keepdim=True)
    untrained = torch.stack(
        [
            digits_mlp(derive_seed(ctx.seed, "untrained", i), cfg.hidden)
            .get_submodule(cfg.layer)
            .weight.detach()
            .reshape(-1)
            for i in range(len(tasks))
        ]
    )
    accs["task_bacc_min"] = min(baccs)
    accs["task_bacc_mean"] = sum(baccs) / len(baccs)
    return (
        base,
        {"same": same, "different_init": torch.stack(diff_rows), "untrained": untrained, "random_update": rand},
        accs,
    )


def _hessian(cfg, ctx, base, x, y):
    model = copy.deepcopy(base).double()
    op = HessianOperator(
        model, cross_entropy, (x[: cfg.n_hessian].double(), y[: cfg.n_hessian]), params=f"{cfg.layer}.weight"
    )
    return lanczos(op, k=cfg.k_hessian, tol=cfg.lanczos_tol, seed=derive_seed(ctx.seed, "hessian"))


def _adapt(cfg, base, method: str, basis, mean_update, batch_fn):
    """The base adapted to one held-out task through the analysed layer only."""
    model = copy.deepcopy(base)
    layer = model.get_submodule(cfg.layer)
    if method == "mean_update":
        with torch.no_grad():
            layer.weight += mean_update.view_as(layer.weight)
        return model
    if method == "base":
        return model
    if method == "subspace":
        confine_to_subspace(model, cfg.layer, basis)
    elif method == "lora":
        apply_lora(model, cfg.rank, "lora", targets=[cfg.layer], seed=0)
    else:  # full_layer
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(cfg.layer + "."))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, TrainConfig(optimizer="adam", lr=cfg.heldout_lr))
    Trainer(model, opt, cross_entropy, batch_fn, cfg.heldout_steps).fit()
    return model


def _heldout(cfg, ctx, x, y, d, base, pcas, same, held):
    """Balanced test accuracy per method and the captured energy share of each held-out update."""
    basis = pcas["same"].basis[:, : cfg.rank].to(same.dtype)
    out: dict[str, list[float]] = {f"heldout_bacc_{m}": [] for m in METHODS}
    batches = _task_batches(cfg, ctx.seed, x, y, held)
    for c, bf in zip(held, batches):
        for m in METHODS:
            model = _adapt(cfg, base, m, basis, same.mean(0), bf)
            out[f"heldout_bacc_{m}"].append(balanced_accuracy(model, d.x_test, one_vs_rest(d.y_test, c)))
    ups = task_updates(
        lambda: digits_mlp(0, cfg.hidden),
        base.state_dict(),
        batches,
        cross_entropy,
        steps=cfg.finetune_steps,
        lr=cfg.finetune_lr,
    )[cfg.layer].double()
    for stack in ("same", "different_init", "random_update"):
        q = torch.linalg.qr(pcas[stack].basis[:, : cfg.rank].double()).Q
        out[f"capture_{stack}"] = [float(((ups @ q) ** 2).sum() / (ups**2).sum())]
    return {k: sum(v) / len(v) for k, v in out.items()}


def _stack_values(cfg, pcas, eig, size: int) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    chance = cfg.k_hessian / size
    vals: dict[str, dict[str, float]] = {}
    for stack, ss in pcas.items():
        top = float(ss.scree[: cfg.rank].sum())
        v = {"k90": float(ss.n_components), "top_share": top, "top1_share": float(ss.scree[0])}
        if eig is not None and stack != "untrained":
            v["hessian_overlap_over_chance"] = subspace_overlap(ss.basis[:, : cfg.rank], eig) / chance
        vals[stack] = v
    rand_top = vals["random_update"]["top_share"]
    for v in vals.values():
        v["top_share_over_random"] = v["top_share"] / rand_top
    treat = dict(vals["same"])
    treat["hessian_over_different"] = (
        treat["hessian_overlap_over_chance"] / vals["different_init"]["hessian_overlap_over_chance"]
    )
    treat["different_over_random"] = vals["different_init"]["top_share_over_random"]
    a, b = pcas["same"].basis[:, : cfg.rank], pcas["different_init"].basis[:, : cfg.rank]
    treat["same_vs_different_overlap_over_chance"] = subspace_overlap(a, b) / (cfg.rank / size)
    angles = torch.rad2deg(principal_angles(a, b))
    treat["angle_same_different_min_deg"], treat["angle_same_different_max_deg"] = float(angles[0]), float(angles[-1])
    return treat, {k: v for k, v in vals.items() if k != "same"}


@register_study
class SharedSubspace(Study):
    id = "S-shared-subspace"
    instrument = "spectral"
    claim = (
        "Fine-tuning updates of one layer for n one-vs-rest digit tasks share a strong low-dimensional "
        "subspace when every task starts from one pretrained W_0 (top components far above random updates "
        "of the same norms, and above untrained random-init weights), but not when each task starts from its "
        "own pretrained initialisation; the shared subspace aligns with W_0's top Hessian eigenvectors "
        "beyond what different-init updates share, and captures held-out tasks' updates."
    )
    citation = (
        "Kaushik et al. (2025), arXiv:2512.05117 (Universal Weight Subspace Hypothesis), critiqued; "
        "Gur-Ari et al. (2018), arXiv:1812.04754 (gradient descent happens in a tiny subspace)"
    )
    Config = SharedSubspaceConfig
    presets = {
        "quick": {"pretrain_steps": 400, "finetune_steps": 100, "heldout_steps": 100, "n_hessian": 600},
        "full": {},
    }
    nulls = {
        "different_init": "the same tasks, each fine-tuned from its own base pretrained from its own random "
        "initialisation (updates relative to that base)",
        "untrained": "the layer's weights of n untrained random-init networks (the replication's null: "
        "PCA of weights with no training at all)",
        "random_update": "n i.i.d. Gaussian updates, each of the norm of the treatment's update of that task",
    }
    replication = (
        "the seed sets every initialisation (shared base, the n other bases, the untrained nets), "
        "the digits split, which digits are held out, the batch order, the random updates and the "
        "Lanczos start"
    )
    quick_cost_s = 12.0

    def checks(self, cfg):
        return [
            CheckSpec(
                "top_share_over_random",
                "top_share_over_random",
                ">=",
                "min_top_share_over_random",
                controls=("untrained", "different_init"),
                label=f"energy share of the top {cfg.rank} components, same init / random updates",
            ),
            CheckSpec(
                "different_init_over_random",
                "different_over_random",
                "<=",
                "max_different_over_random",
                label="the same for different inits / random updates (near chance)",
            ),
            CheckSpec(
                "hessian_overlap_over_chance",
                "hessian_overlap_over_chance",
                ">=",
                "min_hessian_over_chance",
                controls=("random_update",),
                label=f"overlap of the shared subspace with the top {cfg.k_hessian} Hessian eigenvectors "
                f"at W_0, / chance",
            ),
            CheckSpec(
                "hessian_over_different",
                "hessian_over_different",
                ">=",
                "min_hessian_over_different",
                label="that overlap / the different-init subspace's",
            ),
            CheckSpec(
                "capture_over_different",
                "capture_same_over_different",
                ">=",
                "min_capture_over_different",
                label="held-out updates' energy captured by the shared subspace / by the different-init one",
            ),
        ]

    def preconditions(self, cfg):
        return [
            GateSpec("base_acc", "base_acc_min", ">=", "min_base_acc", why="every base learned the digits"),
            GateSpec(
                "task_bacc",
                "task_bacc_min",
                ">=",
                "min_task_bacc",
                why="every fine-tuned task learned its one-vs-rest task",
            ),
            GateSpec(
                "heldout_full_bacc",
                "heldout_bacc_full_layer",
                ">=",
                "min_task_bacc",
                why="the held-out tasks are learnable through the analysed layer",
            ),
            GateSpec(
                "lanczos_converged",
                "lanczos_converged",
                ">=",
                "min_converged_fraction",
                why="the top Hessian eigenvectors converged",
            ),
        ]

    def measure(self, cfg: SharedSubspaceConfig, ctx: StudyContext) -> Measurement:
        x, y, d = digits(ctx.seed)
        order = torch.randperm(10, generator=make_generator(ctx.seed, "heldout-digits")).tolist()
        held, tasks = order[: cfg.n_heldout], order[cfg.n_heldout : cfg.n_heldout + cfg.n_tasks]
        base, stacks, accs = _stacks(cfg, ctx, x, y, d, tasks)
        pcas = {k: shared_subspace(s, cfg.rank) for k, s in stacks.items()}
        res = _hessian(cfg, ctx, base, x, y)
        values, nulls = _stack_values(cfg, pcas, res.eigenvectors, stacks["same"].shape[1])
        values.update(accs)
        values["lanczos_converged"] = float(res.converged)
        values["hessian_top"] = float(res.eigenvalues[0])
        values.update(_heldout(cfg, ctx, x, y, d, base, pcas, stacks["same"], held))
        values["capture_chance"] = cfg.rank / stacks["same"].shape[1]
        values["capture_same_over_different"] = values["capture_same"] / values["capture_different_init"]
        scree = [
            {"component": j + 1, **{k: round(float(p.scree[j]), 4) for k, p in pcas.items()}}
            for j in range(len(pcas["same"].scree))
        ]
        if ctx.keep_figures:
            ctx.save_figure("scree", _figure(pcas))
        return Measurement(values=values, nulls=nulls, tables={"scree": scree})

    def summarize(self, cfg, m):
        g = lambda k: m.get(k, float("nan"))  # noqa: E731
        return (
            f"top-{cfg.rank} energy share: same init {g('top_share'):.2f}, different inits "
            f"{g('different_init:top_share'):.2f}, untrained weights {g('untrained:top_share'):.2f}, random "
            f"updates {g('random_update:top_share'):.2f}; components for 90%: {g('k90'):.1f} / "
            f"{g('different_init:k90'):.1f} / {g('untrained:k90'):.1f} / {g('random_update:k90'):.1f}; Hessian "
            f"overlap / chance {g('hessian_overlap_over_chance'):.1f} (different inits "
            f"{g('different_init:hessian_overlap_over_chance'):.1f}); held-out balanced accuracy: base "
            f"{g('heldout_bacc_base'):.2f}, mean update {g('heldout_bacc_mean_update'):.2f}, subspace "
            f"{g('heldout_bacc_subspace'):.2f}, LoRA {g('heldout_bacc_lora'):.2f}, full layer "
            f"{g('heldout_bacc_full_layer'):.2f} (seed means)"
        )


def _figure(pcas):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    for k, p in pcas.items():
        ax.plot(range(1, len(p.scree) + 1), torch.cumsum(p.scree, 0).numpy(), marker="o", label=k)
    ax.axhline(0.9, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("components")
    ax.set_ylabel("cumulative energy share")
    ax.set_title("uncentred PCA of the stacked layer updates")
    ax.legend()
    fig.tight_layout()
    return fig


__all__ = ["SharedSubspace", "SharedSubspaceConfig", "balanced_accuracy", "one_vs_rest"]
