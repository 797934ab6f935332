"""S-attention-dilution: as sequences grow, a trained Transformer's attention spreads out, its accuracy falls,
the queries whose attention is most spread err most (at a fixed position), and sharpening the attention at
test time recovers accuracy.

Setup: flip-flop language (Liu et al. 2023: write / ignore / read, the read must return the last written
bit), a causal Transformer without position encoding (so that no untrained position embedding is the
cause), trained on length L, tested at L..8L. Entropies are taken at the read queries (the ones the task
scores), averaged over layers and heads. Raw entropy grows by ``log(t+1)`` for *any* near-uniform
attention (an untrained model passes a raw-entropy check), so dilution is measured on the *normalised*
entropy H / log(t+1) (1 = uniform over the t+1 visible keys).

Per seed: (1) the accuracy drop from L to 8L; (2) the rise of the normalised read entropy from L to 8L;
(3) within length 8L, the Spearman partial correlation of a read's entropy and its error with its
position partialled out; (4) the intervention: attention logits multiplied by beta > 1 (an inverse
temperature) in every layer or in one layer alone; the layer(s) and beta (from ``betas``, 1 included) are
chosen on a selection batch and the accuracy gained is measured on a separate test batch. The null
``untrained`` is the same network at initialisation.
"""

from __future__ import annotations

import numpy as np
import torch
from typing import Any, Literal

from pydantic import Field

from neumo.config import StrictModel
from neumo.memory.probes.attention import attention_entropy
from neumo.memory.tasks import IGNORE, make_task, task_rng
from neumo.memory.train import MemoryRunConfig, model_for_run, train_on_task
from neumo.stats import partial_spearman
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.train import TrainConfig

UNTRAINED = "untrained"


class AttentionDilutionThresholds(Thresholds):
    min_train_acc: float = Field(
        0.95,
        description="competence gate: the read accuracy at the training length "
        "(Deletang et al.'s bar before extrapolation counts)",
    )
    min_acc_drop: float = Field(0.1, description="'accuracy falls': ten points lost from L to 8L")
    min_entropy_rise: float = Field(
        0.05,
        description="normalised read entropy H/log(t+1) rises by 5% of its "
        "maximum from L to 8L (a principled small value)",
    )
    min_partial_corr: float = Field(
        0.1,
        description="Spearman partial correlation of entropy and error at "
        "fixed position >= 0.1 (Cohen's 'small' effect)",
    )
    min_recovery: float = Field(
        0.05,
        description="sharpening recovers at least five points of accuracy at 8L "
        "(about six standard errors of a 128-sequence batch)",
    )


class AttentionDilutionConfig(StrictModel):
    train_len: int = 32
    test_factors: list[int] = [1, 2, 4, 8]
    p_ignore: float = 0.8
    # learned positions are sized to the training length and cannot be read at 2L..8L, so they are refused
    pos: Literal["none", "sinusoidal", "rope", "alibi"] = "none"
    d_model: int = 32
    n_layers: int = 2
    n_heads: int = 2
    train: TrainConfig = TrainConfig(steps=1000, batch_size=64, lr=3e-3, eval_every=100)
    eval_size: int = 256
    select_size: int = Field(128, ge=1, description="sequences of the batch that chooses the sharpening")
    betas: list[float] = Field([1.0, 1.5, 2.0, 3.0, 4.0], min_length=1)
    thresholds: AttentionDilutionThresholds = AttentionDilutionThresholds()


@torch.no_grad()
def read_stats(model, batch) -> dict[str, np.ndarray]:
    """Per read query: position, error (0/1), attention entropy and normalised entropy (layer/head mean)."""
    logits, mem = model(batch.inputs, return_memory=True)
    mask = batch.targets != IGNORE
    b, t = torch.nonzero(mask, as_tuple=True)
    rows = mem["attention"][:, b, :, t, :]  # (R, L, H, T): the read queries' rows
    ent = attention_entropy(rows).mean(dim=(1, 2))  # (R,)
    err = (logits.argmax(-1) != batch.targets)[b, t]
    return {
        "pos": t.numpy().astype(float),
        "err": err.numpy().astype(float),
        "ent": ent.numpy(),
        "norm_ent": (ent / torch.log1p(t.double())).numpy(),
    }


@torch.no_grad()
def accuracy(model, batch, beta: float = 1.0, layers: list[int] | None = None) -> float:
    """Read accuracy with the attention logits of ``layers`` (default all) multiplied by ``beta``."""
    model.scale_attention_logits(beta, layers)
    try:
        pred = model(batch.inputs).argmax(-1)
    finally:
        model.scale_attention_logits(1.0)
    mask = batch.targets != IGNORE
    return float(((pred == batch.targets) & mask).sum()) / max(int(mask.sum()), 1)


@register_study
class AttentionDilution(Study):
    id = "S-attention-dilution"
    instrument = "memory"
    claim = (
        "Beyond its training length, a trained Transformer's attention spreads over more keys (its "
        "entropy relative to uniform rises) and its accuracy falls; at a fixed length and position the "
        "reads whose attention is more spread err more, and sharpening the attention at test time "
        "recovers accuracy (attention dilution)."
    )
    citation = (
        "Liu et al. (2023) NeurIPS 'Exposing Attention Glitches with Flip-Flop Language Modeling'; "
        "Chiang & Cholak (2022) ACL"
    )
    Config = AttentionDilutionConfig
    presets = {"quick": {"train": {"steps": 600, "eval_every": 100}, "eval_size": 128, "select_size": 32}, "full": {}}
    nulls = {UNTRAINED: "the same Transformer at initialisation (near-uniform attention), measured the same way"}
    replication = "the seed sets the initialisation, the training stream and the test and selection batches"
    quick_cost_s = 35.0  # CPU seconds, one thread, 600 quick steps (measured)
    threshold_history = (
        "no threshold changed; after a first look (all-layer sharpening never helped) the "
        "intervention also tries each layer alone, chosen on the selection batch"
    )

    def checks(self, cfg):
        c = (UNTRAINED,)
        return [
            CheckSpec("acc_drop", "acc_drop", ">=", "min_acc_drop", controls=c, label="read accuracy at L minus at 8L"),
            CheckSpec(
                "norm_entropy_rise",
                "norm_entropy_rise",
                ">=",
                "min_entropy_rise",
                controls=c,
                label="rise of H/log(t+1) at the reads from L to 8L",
            ),
            CheckSpec(
                "partial_corr_entropy_error",
                "partial_corr",
                ">=",
                "min_partial_corr",
                controls=c,
                label="Spearman(entropy, error | position) at 8L",
            ),
            CheckSpec(
                "sharpening_recovery",
                "recovery",
                ">=",
                "min_recovery",
                controls=c,
                label="accuracy gained at 8L by sharpened attention (beta chosen on another batch)",
            ),
        ]

    def preconditions(self, cfg):
        return [
            GateSpec(
                "acc_at_train_len",
                "acc_train_len",
                ">=",
                "min_train_acc",
                why="the Transformer learned flip-flop at its training length",
            )
        ]

    def measure(self, cfg: AttentionDilutionConfig, ctx: StudyContext) -> Measurement:
        lengths = [cfg.train_len * f for f in cfg.test_factors]
        run_cfg = MemoryRunConfig(
            task="flipflop",
            task_knobs={"length": cfg.train_len, "p_ignore": cfg.p_ignore},
            model="transformer",
            model_knobs=dict(d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, pos=cfg.pos),
            train=cfg.train,
            eval_lengths=[cfg.train_len],
            eval_size=cfg.eval_size,
            seed=ctx.seed,
        )
        if ctx.arm == UNTRAINED:
            task = make_task(run_cfg.task, **run_cfg.task_knobs)
            model = model_for_run(run_cfg, task)
        else:
            res = train_on_task(run_cfg, progress=ctx.progress)
            model, task = res.model, res.task
        model.eval()
        rows, stats = [], {}
        for L in lengths:
            s = read_stats(model, task.sample(cfg.eval_size, task_rng(ctx.seed, "test", "dilution", L), L))
            stats[L] = s
            rows.append(
                {
                    "length": L,
                    "acc": 1.0 - float(s["err"].mean()),
                    "entropy": float(s["ent"].mean()),
                    "norm_entropy": float(s["norm_ent"].mean()),
                    "reads": int(s["err"].size),
                }
            )
        lo, hi = lengths[0], lengths[-1]
        test = task.sample(cfg.eval_size, task_rng(ctx.seed, "test", "dilution", hi), hi)
        select = task.sample(cfg.select_size, task_rng(ctx.seed, "probe", "select-beta", hi), hi)
        # candidates: every layer at once, or one layer alone, at each beta; chosen on the selection batch
        where: list[tuple[str, list[int] | None]] = [("all", None)] + [(str(i), [i]) for i in range(cfg.n_layers)]
        cands = [(w, lay, b) for w, lay in where for b in cfg.betas]
        sel = {(w, b): accuracy(model, select, b, lay) for w, lay, b in cands}
        best = max(cands, key=lambda c: (sel[(c[0], c[2])], -c[2]))  # ties: the mildest sharpening
        beta_all = max(cfg.betas, key=lambda b: (sel[("all", b)], -b))
        acc_hi, acc_sharp = rows[-1]["acc"], accuracy(model, test, best[2], best[1])  # test = stats[hi]
        train_batch = task.sample(cfg.eval_size, task_rng(ctx.seed, "test", "dilution", lo), lo)
        s = stats[hi]
        values = {
            "acc_train_len": rows[0]["acc"],
            "acc_longest": rows[-1]["acc"],
            "acc_drop": rows[0]["acc"] - rows[-1]["acc"],
            "norm_entropy_rise": rows[-1]["norm_entropy"] - rows[0]["norm_entropy"],
            "entropy_rise": rows[-1]["entropy"] - rows[0]["entropy"],
            "uniform_entropy_rise": float(np.log1p(s["pos"]).mean() - np.log1p(stats[lo]["pos"]).mean()),
            "partial_corr": partial_spearman(s["ent"], s["err"], s["pos"]),
            "beta": float(best[2]),
            "sharpened_layer": -1.0 if best[1] is None else float(best[1][0]),
            "acc_sharpened": acc_sharp,
            "recovery": acc_sharp - acc_hi,
            "acc_train_len_sharpened": accuracy(model, train_batch, best[2], best[1]),
            "beta_all_layers": float(beta_all),
            "recovery_all_layers": (accuracy(model, test, beta_all) if beta_all != 1.0 else acc_hi) - acc_hi,
        }
        sharpening = [{"layers": w, "beta": b, "selection_acc": a} for (w, b), a in sel.items()]
        tables: dict[str, list[dict[str, Any]]] = {"dilution": rows, "sharpening": sharpening}
        if ctx.keep_figures:
            ctx.save_figure("attention_dilution", _figure(rows, cfg.train_len))
        return Measurement(values=values, tables=tables)

    def summarize(self, cfg, m):
        nan = float("nan")
        u = f"{UNTRAINED}:"
        return (
            f"read accuracy {m.get('acc_train_len', nan):.3f} at L, {m.get('acc_longest', nan):.3f} at "
            f"{cfg.test_factors[-1]}L; H/log(t+1) rises {m.get('norm_entropy_rise', nan):+.3f} "
            f"(untrained {m.get(u + 'norm_entropy_rise', nan):+.3f}); partial Spearman(entropy, error | "
            f"position) {m.get('partial_corr', nan):.2f} (untrained {m.get(u + 'partial_corr', nan):.2f}); "
            f"sharpening gains {m.get('recovery', nan):+.3f} (untrained {m.get(u + 'recovery', nan):+.3f}) "
            "(seed means)"
        )


def _figure(rows, train_len):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    L = [r["length"] for r in rows]
    ax.plot(L, [r["norm_entropy"] for r in rows], "o-", label="read entropy / log(t+1)")
    ax.set(xscale="log", xlabel="sequence length", ylabel="normalised entropy", title="attention dilution")
    ax2 = ax.twinx()
    ax2.plot(L, [r["acc"] for r in rows], "s-", color="C3", label="read accuracy")
    ax2.set_ylabel("read accuracy")
    ax.axvline(train_len, ls=":", color="gray")
    fig.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 0.88))
    fig.tight_layout()
    return fig


__all__ = ["AttentionDilution", "AttentionDilutionConfig", "read_stats"]
