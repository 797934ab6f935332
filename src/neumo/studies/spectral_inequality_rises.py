"""S-inequality-rises: does learning make neuron strengths unequal, and do strong neurons grow more?

Setup (pinned): digits in [0, 1], MLP 64-256-256-10 ReLU, cross-entropy, Adam lr 1e-3, batch 64; the
hidden layer ``net.2.weight`` (256 x 256). Strength of a neuron: the norm of its incoming weights (a row,
``out``) and of its outgoing weights (a column, ``in``). At initialisation (uniform init) the Gini of
row/column norms is about 0.015 (norms of 256 entries concentrate), so any training raises it by a large
factor; the claim is judged against the same training without a signal to learn:

- ``shuffled_labels``: the same training (same init and batches) on permuted labels;
- ``noise_inputs``: the same training on the real labels with each image replaced by Gaussian noise of
  the same per-pixel mean and standard deviation (fixed per example, so it is "labels on noise").

Rich-get-richer is defined against the *initial* strength: the Spearman correlation between a neuron's
strength at step 0 and its growth from step 0 to the end (zero in expectation when growth does not
depend on the starting strength). The old windowed correlation (strength at t vs growth to t + lag) and
the same with the previous window's growth partialled out are reported, not judged: the windowed one
is positive whenever growth persists, whatever the starting strength.

A seed changes the initialisation, the digits split, the batch order, the label permutation and the noise.
"""

from __future__ import annotations


import torch
from pydantic import Field, model_validator

from neumo.config import StrictModel
from neumo.data.digits import minibatches
from neumo.seeding import make_generator
from neumo.spectral.inequality import gini, neuron_strengths, spearman
from neumo.spectral.nulls import shuffled_labels
from neumo.stats import partial_spearman
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import cross_entropy, digits, digits_mlp
from neumo.train import Trainer
from neumo.train.callbacks import Callback

SIDES = ("out", "in")
NULLS = ("shuffled_labels", "noise_inputs")


class InequalityRisesThresholds(Thresholds):
    min_gini_ratio_over_null: float = Field(
        1.5,
        description="learning raises the Gini of neuron strengths at "
        "least 1.5x as much as training without a signal "
        "(a principled 'clearly above', fixed before the "
        "nulls were run)",
    )
    min_rich_get_richer: float = Field(
        0.2, description="the old study's pre-registered minimum correlation (0.2), now against the initial strength"
    )
    min_rich_over_null: float = Field(0.2, description="the same 0.2, required as the excess over a null's correlation")
    min_train_acc: float = Field(0.95, description="competence gate: the network fitted its training set")


class InequalityRisesConfig(StrictModel):
    steps: int = Field(2000, ge=1)
    lag: int = Field(100, ge=1)
    layer: str = "net.2.weight"
    lr: float = Field(1e-3, gt=0)
    thresholds: InequalityRisesThresholds = InequalityRisesThresholds()

    @model_validator(mode="after")
    def _lag_divides_steps(self):
        # strengths are recorded every `lag` steps; the "final" Gini must be the last step's
        if self.steps % self.lag:
            raise ValueError(f"lag ({self.lag}) must divide steps ({self.steps}) so the last record is the final step")
        return self


def rich_get_richer(s0: torch.Tensor, st: torch.Tensor) -> float:
    """Spearman correlation of the initial strength with the growth ``st - s0``."""
    return spearman(s0, st - s0)


class StrengthRecorder(Callback):
    """Every ``lag`` steps: the strengths of one weight, their Gini and the windowed correlations."""

    def __init__(self, param: torch.nn.Parameter, lag: int):
        self.param, self.lag = param, lag
        self.s0 = neuron_strengths(param)
        self.prev = self.s0
        self.prev_growth: dict[str, torch.Tensor] | None = None
        self.rows = [self._gini_row(0, self.s0)]
        self.window: dict[str, list[float]] = {s: [] for s in SIDES}
        self.partial: dict[str, list[float]] = {s: [] for s in SIDES}

    def _gini_row(self, step, s):
        return {
            "step": step,
            **{f"gini_{side}": gini(s[side]) for side in SIDES},
            "gini_entries": gini(self.param.detach().abs()),
        }

    def on_after_optimizer_step(self, trainer, state) -> None:
        if state.step % self.lag:
            return
        now = neuron_strengths(self.param)
        self.rows.append(self._gini_row(state.step, now))
        growth = {side: now[side] - self.prev[side] for side in SIDES}
        for side in SIDES:
            self.window[side].append(spearman(self.prev[side], growth[side]))
            if self.prev_growth is not None:
                self.partial[side].append(partial_spearman(self.prev[side], growth[side], self.prev_growth[side]))
        self.prev, self.prev_growth = now, growth


def _inputs(x: torch.Tensor, arm: str, seed: int) -> torch.Tensor:
    if arm != "noise_inputs":
        return x
    g = make_generator(seed, "null-noise-inputs")
    return x.mean(0) + x.std(0) * torch.randn(x.shape, generator=g, dtype=x.dtype)


def _mean(v: list[float]) -> float:
    return sum(v) / len(v) if v else float("nan")


@register_study
class InequalityRises(Study):
    id = "S-inequality-rises"
    instrument = "spectral"
    claim = (
        "Training on a learnable task makes neuron strengths unequal: the Gini coefficient of the hidden "
        "layer's row and column norms rises well above the rise that training on shuffled labels or on "
        "noise inputs gives, and neurons that start stronger grow more (positive correlation of initial "
        "strength and growth, above the nulls')."
    )
    citation = "Neural Matthew Effect essay (Merton 1968 'Matthew effect'); Gini (1912)"
    Config = InequalityRisesConfig
    presets = {"quick": {"steps": 600}, "full": {}}
    nulls = {
        "shuffled_labels": "the same training (same init and batches) on permuted labels",
        "noise_inputs": "the same training on the real labels with each image replaced by Gaussian noise of "
        "the same per-pixel mean and standard deviation (fixed per example)",
    }
    replication = "the seed sets the initialisation, data split, batch order, label permutation and noise"
    quick_cost_s = 20.0

    def checks(self, cfg):
        out = []
        for side, word in (("out", "rows"), ("in", "columns")):
            for null in NULLS:
                other = tuple(n for n in NULLS if n != null)
                out.append(
                    CheckSpec(
                        f"gini_{side}_rise_over_{null}",
                        f"gini_{side}_ratio",
                        ">=",
                        "min_gini_ratio_over_null",
                        null=null,
                        controls=other,
                        label=f"Gini of {word} final/initial, over the same on {null}",
                    )
                )
            out.append(
                CheckSpec(
                    f"rich_get_richer_{side}",
                    f"rich_get_richer_{side}",
                    ">=",
                    "min_rich_get_richer",
                    controls=NULLS,
                    label=f"Spearman(initial strength, growth), {word}",
                )
            )
            for null in NULLS:
                other = tuple(n for n in NULLS if n != null)
                out.append(
                    CheckSpec(
                        f"rich_get_richer_{side}_over_{null}",
                        f"rich_get_richer_{side}",
                        ">=",
                        "min_rich_over_null",
                        null=null,
                        relation="difference",
                        controls=other,
                        label=f"Spearman(initial strength, growth), {word}, minus {null}'s",
                    )
                )
        return out

    def preconditions(self, cfg):
        return [GateSpec("train_acc", "train_acc", ">=", "min_train_acc", why="the network fitted its training set")]

    def measure(self, cfg: InequalityRisesConfig, ctx: StudyContext) -> Measurement:
        x, y, _ = digits(ctx.seed)
        x = _inputs(x, ctx.arm, ctx.seed)
        y = shuffled_labels(y, ctx.seed) if ctx.arm == "shuffled_labels" else y
        model = digits_mlp(ctx.seed, [256, 256])
        param = model.get_parameter(cfg.layer)
        rec = StrengthRecorder(param, cfg.lag)

        Trainer(
            model,
            torch.optim.Adam(model.parameters(), lr=cfg.lr),
            cross_entropy,
            minibatches(x, y, 64, ctx.seed),
            cfg.steps,
            callbacks=[rec],
            run=ctx.run,
            log_every=max(1, cfg.steps // 20),
        ).fit()
        with torch.no_grad():
            train_acc = float((model(x).argmax(1) == y).float().mean())
        st = neuron_strengths(param)
        first, last = rec.rows[0], rec.rows[-1]
        values = {
            "train_acc": train_acc,
            "gini_entries_init": first["gini_entries"],
            "gini_entries_final": last["gini_entries"],
        }
        for side in SIDES:
            values.update(
                {
                    f"gini_{side}_init": first[f"gini_{side}"],
                    f"gini_{side}_final": last[f"gini_{side}"],
                    f"gini_{side}_ratio": last[f"gini_{side}"] / first[f"gini_{side}"],
                    f"rich_get_richer_{side}": rich_get_richer(rec.s0[side], st[side]),
                    f"rich_window_{side}": _mean(rec.window[side][1:]),
                    f"rich_partial_{side}": _mean(rec.partial[side]),
                }
            )
        if ctx.keep_figures:
            ctx.save_figure("gini", _figure(rec.rows, cfg.layer))
        return Measurement(values=values, tables={"gini": rec.rows} if not ctx.is_null else {})

    def summarize(self, cfg, m):
        g = lambda k: m.get(k, float("nan"))  # noqa: E731
        return (
            f"Gini of row norms {g('gini_out_init'):.3f} -> {g('gini_out_final'):.3f} (shuffled labels "
            f"{g('shuffled_labels:gini_out_final'):.3f}, noise inputs {g('noise_inputs:gini_out_final'):.3f}); "
            f"columns -> {g('gini_in_final'):.3f} ({g('shuffled_labels:gini_in_final'):.3f}, "
            f"{g('noise_inputs:gini_in_final'):.3f}); Spearman(initial strength, growth) rows "
            f"{g('rich_get_richer_out'):.2f} ({g('shuffled_labels:rich_get_richer_out'):.2f}, "
            f"{g('noise_inputs:rich_get_richer_out'):.2f}), columns {g('rich_get_richer_in'):.2f} "
            f"({g('shuffled_labels:rich_get_richer_in'):.2f}, {g('noise_inputs:rich_get_richer_in'):.2f}) "
            "(seed means)"
        )


def _figure(rows, layer):
    from neumo.report.figures import line_plot

    steps = [r["step"] for r in rows]
    fig, _ = line_plot(
        {"rows (out)": (steps, [r["gini_out"] for r in rows]), "columns (in)": (steps, [r["gini_in"] for r in rows])},
        xlabel="step",
        ylabel="Gini of neuron strengths",
        title=f"inequality in {layer}",
    )
    return fig


__all__ = ["InequalityRises", "InequalityRisesConfig", "StrengthRecorder", "rich_get_richer"]
