"""S-recall-capacity: attention solves multi-query associative recall (MQAR) at every tested number of
key-value pairs, while the smallest fixed-size recurrent state that solves it grows with the number of
pairs (Arora et al. 2023, Zoology).

Setup. MQAR with ``P`` pairs (distinct keys from ``n_keys``, values from ``n_values``) followed by ``P``
queries (``seq_len = 2P`` fused, ``3P`` two-token). Per pair count:

- attention: a causal Transformer (its KV cache grows with the input) trained once; it must reach
  ``solved_acc`` at every pair count (the gate: the task is learnable in the step budget);
- recurrent: a fixed-state model (default: one-layer causal linear attention, Katharopoulos et al. 2020,
  state ``hs * (hs + 1)``; ``lstm`` / ``gru``: state ``2h`` / ``h``) at widths ``sizes`` (a doubling grid),
  scanned from the largest width down. The *minimal solving state* at ``P`` is the state of the smallest
  width of the unbroken run of widths, from the top, that reach ``solved_acc`` on held-out sequences
  (right-censored at the next grid width when even the largest fails).

Every run trains to convergence: it stops when it reaches ``target_acc`` or when its probe accuracy has
not risen by ``min_delta`` for ``patience`` evaluations (a plateau); a run that fails the bound and was
stopped by the step cap instead is *unconverged* (a gate).

Format. By default each pair is one token (``fused_pairs``, id = key * n_values + value, offset). Zoology
writes key and value as two tokens; then attention needs a previous-token head before it can match keys,
and in that format a 2-layer Transformer stayed at 0.32-0.55 accuracy at 8 pairs after 1500 steps (learned,
RoPE and ALiBi positions; see the docs), out of a CPU budget. Fusing removes only that circuit: the memory
demand on a recurrent model is the same (P values of log2(n_values) bits, bound to their keys, held until
queried). ``fused_pairs: false`` runs Zoology's format; the attention gate then says whether it was learnt.

A seed changes the initialisation of every model, the training sequences and their order, and the
held-out sequences. Null (a separate arm, same seeds and scan): ``untrained``, every model at its
initialisation (no step taken).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from neumo.config import StrictModel
from neumo.errors import NeumoError
from neumo.memory.tasks import make_task
from neumo.memory.tasks.recall import MQAR
from neumo.memory.train import MemoryRunConfig, model_for_task, train_on_task
from neumo.stats import spearman_permutation
from neumo.studies.base import CheckSpec, Estimate, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.train import TrainConfig

UNTRAINED = "untrained"


class RecallCapacityThresholds(Thresholds):
    solved_acc: float = Field(
        0.95,
        description="the accuracy bound that counts as solving MQAR: the contract's "
        "competence bound, far above chance 1/n_values",
    )
    min_state_growth_log2: float = Field(
        1.0,
        description="log2 of minimal solving state, most over fewest "
        "pairs: one step of the doubling width grid, the "
        "smallest increase the grid resolves",
    )
    min_rank_corr: float = Field(
        0.5,
        description="Spearman(pairs, minimal state) per seed: midpoint of none "
        "(0) and monotone (1); with 3 pair counts only a "
        "non-decreasing, non-constant curve exceeds it",
    )
    max_perm_p: float = Field(
        0.05, description="permutation p-value of the Spearman correlation pooled over seeds: the conventional 5% level"
    )
    max_unconverged: float = Field(
        0.0,
        description="gate: no failing recurrent run may have been stopped by "
        "the step cap rather than a plateau (trained to convergence)",
    )


class RecallCapacityConfig(StrictModel):
    n_pairs: list[int] = Field([2, 4, 8, 16], description="pair counts, increasing (at least 3)")
    n_keys: int = Field(
        64,
        ge=1,
        description="keys outnumber every recurrent width (Zoology's regime, "
        "vocabulary >> state): below it keys must share dimensions",
    )
    n_values: int = Field(4, ge=2)
    fused_pairs: bool = True
    recurrent: Literal["linear_attention", "lstm", "gru"] = "linear_attention"
    sizes: list[int] = Field(
        [4, 8, 16, 32, 64], description="recurrent widths (d_model, or hidden size for lstm/gru), increasing"
    )
    rnn_train: TrainConfig = TrainConfig(steps=3000, batch_size=64, lr=3e-3, eval_every=25)
    d_model: int = 32
    n_heads: int = 1
    n_layers: int = 1
    transformer_train: TrainConfig = TrainConfig(steps=1000, batch_size=64, lr=3e-3, eval_every=25)
    target_acc: float = Field(0.99, gt=0, le=1, description="early stop once reached")
    patience: int = Field(8, ge=1, description="evaluations without a rise of min_delta that end a run")
    min_delta: float = Field(0.01, ge=0)
    eval_size: int = 256
    thresholds: RecallCapacityThresholds = RecallCapacityThresholds()

    @model_validator(mode="after")
    def _check(self):
        for name in ("n_pairs", "sizes"):
            v = getattr(self, name)
            if sorted(set(v)) != list(v):
                raise NeumoError(f"The '{name}' parameter must be strictly increasing. Got {v} instead.")
        if len(self.n_pairs) < 3:
            raise NeumoError(f"The 'n_pairs' parameter needs at least 3 pair counts. Got {self.n_pairs}.")
        if max(self.n_pairs) > self.n_keys:
            raise NeumoError(f"n_pairs up to {max(self.n_pairs)} needs n_keys >= that; got {self.n_keys}")
        return self


def recurrent_knobs(cfg: RecallCapacityConfig, width: int) -> dict:
    if cfg.recurrent == "linear_attention":
        return {"d_model": width, "n_heads": 1, "n_layers": 1}
    return {"hidden_size": width}


def task_knobs(cfg: RecallCapacityConfig, P: int) -> dict:
    width = 1 if cfg.fused_pairs else 2
    return {
        "n_pairs": P,
        "seq_len": (width + 1) * P,
        "n_keys": cfg.n_keys,
        "n_values": cfg.n_values,
        "fused_pairs": cfg.fused_pairs,
    }


def state_of(cfg: RecallCapacityConfig, width: int, P: int) -> int:
    task = make_task("mqar", **task_knobs(cfg, P))
    assert isinstance(task, MQAR)
    m = model_for_task(cfg.recurrent, task, 0, task.seq_len, **recurrent_knobs(cfg, width))
    return int(m.state_size(task.seq_len))


def minimal_state(rows: list[dict], solved: float, censored: float) -> tuple[float, bool]:
    """(state, censored?) from one pair count's scan rows (largest width first): the state of the smallest
    width of the unbroken run of solving widths from the top; ``censored`` when even the largest fails."""
    need = None
    for r in sorted(rows, key=lambda r: -r["state_size"]):
        if r["acc"] < solved:
            break
        need = r["state_size"]
    return (float(censored), True) if need is None else (float(need), False)


def growth_stats(pairs: list[int], need: list[float]) -> dict[str, float]:
    """log2 growth of the minimal state from the fewest to the most pairs, and Spearman(pairs, need)
    (0 when the need is constant: no association)."""
    from scipy import stats

    rho = 0.0 if len(set(need)) == 1 else float(stats.spearmanr(pairs, need)[0])
    return {"state_growth_log2": math.log2(need[-1] / need[0]), "pairs_state_spearman": rho}


@register_study
class RecallCapacity(Study):
    id = "S-recall-capacity"
    instrument = "memory"
    claim = (
        "On multi-query associative recall, attention reaches the accuracy bound at every tested number "
        "of key-value pairs, while the smallest fixed-size recurrent state that reaches it grows with the "
        "number of pairs."
    )
    citation = "Arora et al. (2023) 'Zoology: Measuring and Improving Recall in Efficient Language Models'"
    Config = RecallCapacityConfig
    presets = {
        "quick": {
            "n_pairs": [2, 4, 8],
            "sizes": [8, 16, 32],
            "rnn_train": {"steps": 1500},
            "transformer_train": {"steps": 500},
        },
        "full": {},
    }
    nulls = {UNTRAINED: "every model (attention and each recurrent width) at its initialisation, no step taken"}
    replication = (
        "the seed sets every model's initialisation, the training sequences and their order, and the held-out sequences"
    )
    quick_cost_s = 60.0

    def checks(self, cfg):
        return [
            CheckSpec(
                "state_growth_log2",
                "state_growth_log2",
                ">=",
                "min_state_growth_log2",
                controls=(UNTRAINED,),
                label="log2(minimal solving state at the most pairs / at the fewest)",
            ),
            CheckSpec(
                "pairs_state_spearman",
                "pairs_state_spearman",
                ">",
                "min_rank_corr",
                controls=(UNTRAINED,),
                label="Spearman(pairs, minimal solving state) per seed",
            ),
            CheckSpec(
                "pooled_perm_p",
                "pooled_perm_p",
                "<=",
                "max_perm_p",
                controls=(UNTRAINED,),
                label="permutation p of Spearman(pairs, minimal state) pooled over seeds",
            ),
        ]

    def preconditions(self, cfg):
        return [
            GateSpec(
                "attention_min_acc",
                "attention_min_acc",
                ">=",
                "solved_acc",
                why="attention reaches the bound at every pair count: the task is learnable in budget",
            ),
            GateSpec(
                "largest_state_acc_fewest_pairs",
                "largest_state_acc_fewest_pairs",
                ">=",
                "solved_acc",
                why="the largest recurrent state solves the fewest pairs: the grid brackets from above",
            ),
            GateSpec(
                "unconverged_failures",
                "unconverged_failures",
                "<=",
                "max_unconverged",
                why="every failing recurrent run ended on a plateau, not at the step cap",
            ),
        ]

    def measure(self, cfg: RecallCapacityConfig, ctx: StudyContext) -> Measurement:
        untrained = ctx.arm == UNTRAINED
        solved = cfg.thresholds.solved_acc
        rows: list[dict] = []
        need, att_acc, unconverged = [], [], 0
        for P in cfg.n_pairs:
            att = self._train(
                cfg,
                ctx,
                P,
                "transformer",
                {
                    "d_model": cfg.d_model,
                    "n_heads": cfg.n_heads,
                    "n_layers": cfg.n_layers,
                    "pos": "none" if cfg.fused_pairs else "learned",
                },
                cfg.transformer_train,
                untrained,
            )
            att_acc.append(att["acc"])
            rows.append({"arch": "attention", **att})
            scan = []
            for width in sorted(cfg.sizes, reverse=True):  # from the top: stop at the first failure
                r = self._train(cfg, ctx, P, cfg.recurrent, recurrent_knobs(cfg, width), cfg.rnn_train, untrained)
                r["width"] = width
                scan.append(r)
                if r["acc"] < solved:
                    unconverged += int(r["stop"] == "cap")
                    break
            rows.extend({"arch": "recurrent", **r} for r in scan)
            s, cens = minimal_state(scan, solved, state_of(cfg, 2 * max(cfg.sizes), P))
            need.append(s)
            rows.append({"arch": "minimal", "n_pairs": P, "state_size": s, "censored": cens, "acc": float("nan")})
        first = [r for r in rows if r["arch"] == "recurrent" and r["n_pairs"] == cfg.n_pairs[0]]
        largest = max(first, key=lambda r: r["state_size"])
        last_scan = [r for r in rows if r["arch"] == "recurrent" and r["n_pairs"] == cfg.n_pairs[-1]]
        values = {
            **growth_stats(cfg.n_pairs, need),
            "attention_min_acc": min(att_acc),
            "largest_state_acc_fewest_pairs": largest["acc"],
            "unconverged_failures": float(unconverged),
            "most_pairs_bracketed": float(any(r["acc"] < solved for r in last_scan)),
            **{f"min_state_P{P}": s for P, s in zip(cfg.n_pairs, need)},
            **{f"attention_acc_P{P}": a for P, a in zip(cfg.n_pairs, att_acc)},
        }
        ctx.run.write_table("capacity", _frame(rows))
        if ctx.keep_figures:
            ctx.save_figure("recall_capacity", _figure(rows, solved))
        return Measurement(
            values=values, tables={"recall_capacity": [_clean(r) for r in rows]}, summary=_words(cfg, need, att_acc)
        )

    def _train(self, cfg, ctx, P, model, knobs, train: TrainConfig, untrained: bool) -> dict:
        if untrained:
            train = train.model_copy(update={"steps": 0})
        run = MemoryRunConfig(
            task="mqar",
            task_knobs=task_knobs(cfg, P),
            model=model,
            model_knobs=knobs,
            train=train,
            eval_size=cfg.eval_size,
            target_acc=cfg.target_acc,
            patience=cfg.patience,
            min_delta=cfg.min_delta,
            seed=ctx.seed,
        )
        res = train_on_task(run, progress=ctx.progress)
        L = max(res.eval)
        acc = float(res.eval[L]["acc"])
        probe = res.history[-1].get("acc", 0.0) if res.history else 0.0
        stop = ("target" if probe >= cfg.target_acc else "plateau") if res.stopped_early else "cap"
        return {
            "model": model,
            "n_pairs": P,
            "state_size": int(res.model.state_size(L)),
            "acc": acc,
            "steps": int(res.steps),
            "stop": stop,
        }

    def pool(self, cfg, units):
        out = {}
        for arm in (None, UNTRAINED):
            xs, ys = [], []
            for u in units:
                m = u.get(arm or "treatment")
                if m is None:
                    continue
                for P in cfg.n_pairs:
                    v = m.values.get(f"min_state_P{P}")
                    if v is not None:
                        xs.append(P)
                        ys.append(v)
            p = 1.0
            if len(xs) >= 3 and len(set(ys)) > 1:
                p = spearman_permutation(xs, ys, n_perm=2000, seed=0)[1]
            out[arm] = p
        p, q = out[None], out[UNTRAINED]
        note = "one permutation test over all seeds' (pairs, state) points"
        return {
            "pooled_perm_p": Estimate(mean=p, ci_low=p, ci_high=p, null_mean=q, note=note),
            f"{UNTRAINED}:pooled_perm_p": Estimate(mean=q, ci_low=q, ci_high=q, note=note),
        }

    def summarize(self, cfg, m):
        need = ", ".join(f"{P} pairs: {m.get(f'min_state_P{P}', float('nan')):.0f}" for P in cfg.n_pairs)
        return (
            f"minimal solving {cfg.recurrent} state (seed mean) {need}; attention accuracy >= "
            f"{m.get('attention_min_acc', float('nan')):.3f} at every pair count; untrained: growth "
            f"{m.get('untrained:state_growth_log2', float('nan')):.2f} (log2)"
        )


def _clean(r: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}


def _frame(rows):
    import pandas as pd

    return pd.DataFrame(rows)


def _words(cfg, need, att_acc) -> str:
    return "; ".join(f"P={P}: state {s:.0f}, attention {a:.3f}" for P, s, a in zip(cfg.n_pairs, need, att_acc))


def _figure(rows, solved):
    from neumo.report.figures import line_plot

    series = {}
    for r in sorted(rows, key=lambda r: r["state_size"]):
        if r["arch"] == "recurrent":
            xs, ys = series.setdefault(f"recurrent, {r['n_pairs']} pairs", ([], []))
            xs.append(r["state_size"])
            ys.append(r["acc"])
    for r in rows:
        if r["arch"] == "attention":
            series[f"attention, {r['n_pairs']} pairs"] = ([r["state_size"]], [r["acc"]])
    fig, _ = line_plot(
        series,
        xlabel="state size (floats)",
        ylabel="MQAR accuracy (held out)",
        logx=True,
        title="recall vs state size",
        hlines={"bound": solved},
    )
    return fig


__all__ = ["RecallCapacity", "RecallCapacityConfig", "growth_stats", "minimal_state"]
