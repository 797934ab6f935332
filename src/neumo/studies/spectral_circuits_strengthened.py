"""S-circuits-strengthened: fine-tuning reuses and strengthens the circuit pretraining built
(Prakash et al. 2024, "Fine-tuning enhances existing mechanisms: a case study on entity tracking").

Setup (pinned): neumo's Transformer (2 layers, 4 heads, d_model 32) pretrained on multi-query associative
recall with fused key-value tokens (MQAR, Arora et al. 2023: 3 pairs in 12 tokens), then fine-tuned on a
related, harder task from the same family (6 pairs in 20 tokens, queries at the end). Components are the 8
heads and 2 MLPs (:mod:`neumo.spectral.attribution`); a component's importance is the rise of the
fine-tuning task's loss when it is mean-ablated, measured on the same held-out batch before and after
fine-tuning.

Null (own arm) ``unrelated``: the same architecture, seed and fine-tuning, pretrained instead on a task of
the same tokens that needs no recall (each position's target is a fixed random function of its own token),
so the components it brings to fine-tuning were not built for recall.

A seed changes the initialisation, the task samples and the unrelated task's function.
"""

from __future__ import annotations

import numpy as np
import torch
from pydantic import Field

from neumo.config import StrictModel
from neumo.memory.evaluate import masked_ce
from neumo.memory.tasks import make_task, task_rng
from neumo.nn import build_model
from neumo.seeding import make_generator
from neumo.spectral.attribution import ablation_effects, components
from neumo.stats import spearman
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study

UNRELATED = "unrelated"


class CircuitsThresholds(Thresholds):
    min_rho: float = Field(
        0.5,
        description="'already the important ones' = Spearman rank agreement of the "
        "components' importance before vs after fine-tuning >= 0.5 (a "
        "strong agreement; 10 components)",
    )
    min_overlap: float = Field(
        0.5, description="more than half of the top-3 components after fine-tuning were top-3 before (chance: 3/10)"
    )
    min_growth: float = Field(
        1.0,
        description="'their effect sizes grew': the top-3 components' summed "
        "ablation effect after / before fine-tuning > 1",
    )
    min_acc: float = Field(
        0.95,
        description="competence gate: the pretrained model solves its task and the fine-tuned model solves the new one",
    )


class CircuitsConfig(StrictModel):
    d_model: int = Field(32, ge=4)
    n_layers: int = Field(2, ge=1)
    n_heads: int = Field(4, ge=1)
    n_keys: int = Field(8, ge=2)
    n_values: int = Field(8, ge=2)
    base_pairs: int = Field(3, ge=1)
    base_len: int = Field(12, ge=4)
    ft_pairs: int = Field(6, ge=1)
    ft_len: int = Field(20, ge=4)
    pretrain_steps: int = Field(400, ge=1)
    finetune_steps: int = Field(300, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0, le=1)
    eval_size: int = Field(256, ge=8)
    top_k: int = Field(3, ge=1)
    thresholds: CircuitsThresholds = CircuitsThresholds()


def _tasks(cfg: CircuitsConfig):
    kw = dict(n_keys=cfg.n_keys, n_values=cfg.n_values, fused_pairs=True)
    return (
        make_task("mqar", n_pairs=cfg.base_pairs, seq_len=cfg.base_len, **kw),
        make_task("mqar", n_pairs=cfg.ft_pairs, seq_len=cfg.ft_len, gap="end", **kw),
    )


def _train(model, batch_fn, steps: int, lr: float) -> None:
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        x, y = batch_fn(step)
        loss = masked_ce(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def _task_batches(task, seed: int, name: str, bs: int):
    def batch_fn(step: int):
        b = task.sample(bs, task_rng(seed, "train", name, step))
        return b.inputs, b.targets

    return batch_fn


def _map_batches(vocab: int, classes: int, seq_len: int, seed: int, bs: int):
    """The unrelated task: each position's target is a fixed random function of its own token."""
    table = torch.randint(0, classes, (vocab,), generator=make_generator(seed, "unrelated-map"))

    def batch_fn(step: int):
        x = torch.randint(0, vocab, (bs, seq_len), generator=make_generator(seed, "unrelated", step))
        return x, table[x]

    return batch_fn, table


@torch.no_grad()
def _acc(model, x, y) -> float:
    model.eval()
    pred = model(x).argmax(-1)
    mask = y != -100
    return float((pred[mask] == y[mask]).float().mean())


def _effects(model, x, y) -> np.ndarray:
    eff = ablation_effects(model, x, lambda logits, _ids: float(masked_ce(logits, y)), mode="mean")
    return np.array([eff[n] for n in components(model)])


def _top(v: np.ndarray, k: int) -> set[int]:
    return set(np.argsort(-v, kind="stable")[:k].tolist())


def _effects_figure(names: list[str], before: np.ndarray, after: np.ndarray):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    x = np.arange(len(names))
    ax.bar(x - 0.2, before, 0.4, label="before fine-tuning", color="#9aa9c4")
    ax.bar(x + 0.2, after, 0.4, label="after fine-tuning", color="#4c72b0")
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set(ylabel="loss increase when mean-ablated", title="component importance on the fine-tuning task")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


@register_study
class CircuitsStrengthened(Study):
    id = "S-circuits-strengthened"
    instrument = "spectral"
    claim = (
        "After fine-tuning a pretrained Transformer on a related task, the components (heads, MLPs) that "
        "matter for the new task are the ones that mattered before fine-tuning (rank agreement and top-3 "
        "overlap), and their effects grew; a model pretrained on an unrelated task shows neither."
    )
    citation = "Prakash et al. (2024), Fine-tuning enhances existing mechanisms, ICLR 2024"
    Config = CircuitsConfig
    presets = {"quick": {"pretrain_steps": 200, "finetune_steps": 150, "eval_size": 128}, "full": {}}
    nulls = {UNRELATED: "the same architecture and fine-tuning, pretrained on an unrelated token-map task (no recall)"}
    replication = "the seed sets the initialisation, the task samples and the unrelated task's function"
    quick_cost_s = 22.0  # CPU seconds, one thread, 3 seeds x 2 arms (measured)

    def checks(self, cfg):
        return [
            CheckSpec(
                "rank_agreement",
                "rho_before_after",
                ">=",
                "min_rho",
                controls=(UNRELATED,),
                label="importance before vs after fine-tuning (Spearman)",
            ),
            CheckSpec(
                "top_overlap",
                "top_overlap",
                ">=",
                "min_overlap",
                controls=(UNRELATED,),
                label="share of the top components kept",
            ),
            CheckSpec(
                "effects_grew",
                "effect_growth",
                ">=",
                "min_growth",
                controls=(UNRELATED,),
                label="top components' effect after / before",
            ),
        ]

    def preconditions(self, cfg):
        return [
            GateSpec("pretrained", "pretrain_acc", ">=", "min_acc", why="pretraining taught its own task"),
            GateSpec("fine_tuned", "finetune_acc", ">=", "min_acc", why="fine-tuning taught the new task"),
            GateSpec(
                "pretrained_null",
                "pretrain_acc",
                ">=",
                "min_acc",
                arm=UNRELATED,
                why="the null's pretraining taught its own (unrelated) task",
            ),
            GateSpec(
                "fine_tuned_null",
                "finetune_acc",
                ">=",
                "min_acc",
                arm=UNRELATED,
                why="the null's fine-tuning taught the new task too",
            ),
        ]

    def measure(self, cfg: CircuitsConfig, ctx: StudyContext) -> Measurement:
        base, ft = _tasks(cfg)
        vocab, classes = base.vocab_size, base.n_classes
        model = build_model(
            "transformer",
            seed=ctx.seed,
            vocab_size=vocab,
            out_dim=classes,
            d_model=cfg.d_model,
            n_layers=cfg.n_layers,
            n_heads=cfg.n_heads,
            max_len=max(cfg.base_len, cfg.ft_len),
        )
        if ctx.arm == UNRELATED:
            batch_fn, table = _map_batches(vocab, classes, cfg.base_len, ctx.seed, cfg.batch_size)
            _train(model, batch_fn, cfg.pretrain_steps, cfg.lr)
            x_pre, y_pre = batch_fn(10**6)
        else:
            _train(model, _task_batches(base, ctx.seed, "pretrain", cfg.batch_size), cfg.pretrain_steps, cfg.lr)
            held = base.sample(cfg.eval_size, task_rng(ctx.seed, "test", "pretrain"))
            x_pre, y_pre = held.inputs, held.targets
        pre_acc = _acc(model, x_pre, y_pre)
        probe = ft.sample(cfg.eval_size, task_rng(ctx.seed, "test", "finetune"))
        before = _effects(model, probe.inputs, probe.targets)
        acc_before = _acc(model, probe.inputs, probe.targets)
        _train(model, _task_batches(ft, ctx.seed, "finetune", cfg.batch_size), cfg.finetune_steps, cfg.lr)
        after = _effects(model, probe.inputs, probe.targets)
        ft_acc = _acc(model, probe.inputs, probe.targets)
        k = min(cfg.top_k, len(after))
        top_after = sorted(_top(after, k))
        growth_den = float(before[top_after].sum())
        names = components(model)
        values = {
            "rho_before_after": spearman(before, after),
            "top_overlap": len(_top(before, k) & set(top_after)) / k,
            "effect_growth": float(after[top_after].sum()) / growth_den if growth_den > 0 else float("inf"),
            "pretrain_acc": pre_acc,
            "finetune_acc": ft_acc,
            "finetune_task_acc_before": acc_before,
            "effect_sum_before": float(before.sum()),
            "effect_sum_after": float(after.sum()),
        }
        table = [{"component": n, "before": float(b), "after": float(a)} for n, b, a in zip(names, before, after)]
        if ctx.keep_figures:
            ctx.save_figure("component_effects", _effects_figure(names, before, after))
        return Measurement(
            values=values, tables={"effects": table}, summary=f"top-{k} after: {[names[i] for i in top_after]}"
        )
