"""S-rebasin: two MLPs trained from different seeds are separated by a loss barrier that weight matching removes.

Setup (pinned): digits in [0, 1] (the seeded split), two MLPs 64-H-H-10 ReLU (H = ``hidden``: 256 full,
128 quick; Ainsworth et al. 2023 find weight matching needs width: the same procedure on a narrow
64-16-16-10 net is reported beside it, not judged) trained
with Adam (lr 1e-3, batch 64, ``steps``) from two initialisations and two batch orders derived from the
seed, on the same training split. Along the straight line ``(1 - t) theta_a + t theta_b`` (``n_points``
values of t) the training cross-entropy gets its barrier (:func:`neumo.spectral.symmetry.loss_barrier`:
the largest excess over the line between the end losses), for model b as trained (``naive``), after
weight matching to a (:func:`weight_matching`, ``matched``) and after a uniformly random permutation of
its hidden units (``random_permutation``). Permuting never changes b's function, so the three lines
share their end points.

Nulls (inline, from the same two models):

- ``identity``: b as trained (no permutation): the naive barrier, the reference of the ratio;
- ``random_permutation`` (a control: it must not pass): b with its hidden units permuted at random, a
  permutation chosen without looking at the weights.

A seed changes the split, the two initialisations, the two batch orders and the random permutation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from neumo.config import StrictModel
from neumo.data.digits import minibatches
from neumo.seeding import derive_seed, make_generator
from neumo.spectral.symmetry import apply_permutation, loss_barrier, weight_matching
from neumo.studies.base import CheckSpec, GateSpec, Measurement, Study, StudyContext, Thresholds
from neumo.studies.registry import register_study
from neumo.studies.spectral_common import cross_entropy, digits, digits_mlp
from neumo.train import Trainer, TrainConfig, make_optimizer


class RebasinThresholds(Thresholds):
    min_naive_barrier: float = Field(
        0.1,
        description="'a clear barrier': the midpoint loses at least 0.1 nats of "
        "training cross-entropy over the line between the ends "
        "(about 10% of the likelihood per sample; fixed before "
        "the first run)",
    )
    max_barrier_ratio: float = Field(
        0.25,
        description="'nearly vanishes': matching removes at least three "
        "quarters of the naive barrier (a principled factor, fixed "
        "before the first run)",
    )
    min_train_acc: float = Field(
        0.98, description="competence gate: both endpoint networks fitted their training set (digits MLPs reach ~1.0)"
    )


class RebasinConfig(StrictModel):
    hidden: list[int] = [256, 256]
    steps: int = 1500
    lr: float = 1e-3
    batch_size: int = 64
    n_points: int = 11
    narrow_hidden: list[int] = [16, 16]  # reported, not judged: the same procedure on a narrow MLP
    thresholds: RebasinThresholds = RebasinThresholds()


def _train(seed: int, name: str, x, y, cfg: RebasinConfig, hidden: list[int]):
    model = digits_mlp(derive_seed(seed, "rebasin", name) % (2**31), hidden)
    opt = make_optimizer(model.parameters(), TrainConfig(optimizer="adam", lr=cfg.lr))
    Trainer(
        model, opt, cross_entropy, minibatches(x, y, cfg.batch_size, derive_seed(seed, "batches", name)), cfg.steps
    ).fit()
    return model


def _acc(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


@register_study
class Rebasin(Study):
    id = "S-rebasin"
    instrument = "spectral"
    claim = (
        "Two wide digits MLPs (two hidden layers of 128 to 256 units) trained from different seeds have a clear training-loss "
        "barrier on the straight line between them; after weight matching of the second to the first it "
        "nearly vanishes (at most a quarter of the naive barrier), while a random permutation does not "
        "reduce it."
    )
    citation = (
        "Ainsworth, Hayase & Srinivasa (2023), Git Re-Basin, ICLR; Entezari et al. (2022), ICLR; "
        "Frankle et al. (2020), ICML"
    )
    Config = RebasinConfig
    presets = {"quick": {"hidden": [128, 128], "steps": 600, "n_points": 9}, "full": {}}
    nulls = {
        "identity": "the second model as trained (no permutation): the naive barrier",
        "random_permutation": "the second model with its hidden units permuted uniformly at random",
    }
    replication = "the seed sets the split, both initialisations, both batch orders and the random permutation"
    quick_cost_s = 9.0

    def checks(self, cfg):
        return [
            CheckSpec(
                "naive_barrier",
                "naive_barrier",
                ">=",
                "min_naive_barrier",
                label="loss barrier between the two models as trained (nats)",
            ),
            CheckSpec(
                "matched_over_naive",
                "barrier",
                "<=",
                "max_barrier_ratio",
                null="identity",
                controls=("random_permutation",),
                label="barrier after weight matching / naive barrier",
            ),
        ]

    def preconditions(self, cfg):
        return [GateSpec("train_acc", "train_acc_min", ">=", "min_train_acc", why="both endpoints fitted their data")]

    def measure(self, cfg: RebasinConfig, ctx: StudyContext) -> Measurement:
        x, y, d = digits(ctx.seed)
        a, b = _train(ctx.seed, "a", x, y, cfg, cfg.hidden), _train(ctx.seed, "b", x, y, cfg, cfg.hidden)
        match = weight_matching(a, b)
        g = make_generator(ctx.seed, "rebasin-random-permutation")
        rand = [torch.randperm(h, generator=g) for h in cfg.hidden]

        def train_loss(m):
            return float(F.cross_entropy(m(x), y))

        def test_err(m):
            return 1.0 - _acc(m, d.x_test, d.y_test)

        models = {"naive": b, "matched": apply_permutation(b, match.perms), "random": apply_permutation(b, rand)}
        res = {k: loss_barrier(a, m, train_loss, cfg.n_points) for k, m in models.items()}
        err = {k: loss_barrier(a, m, test_err, cfg.n_points) for k, m in models.items()}
        accs = [_acc(a, x, y), _acc(b, x, y)]
        values = {
            "barrier": res["matched"].barrier,
            "naive_barrier": res["naive"].barrier,
            "random_barrier": res["random"].barrier,
            "test_err_barrier_naive": err["naive"].barrier,
            "test_err_barrier_matched": err["matched"].barrier,
            "train_acc_min": min(accs),
            "test_acc_a": _acc(a, d.x_test, d.y_test),
            "test_acc_b": _acc(b, d.x_test, d.y_test),
            "end_loss_a": res["naive"].losses[0],
            "end_loss_b": res["naive"].losses[-1],
            "match_sweeps": float(match.sweeps),
            "match_converged": float(match.converged),
            "objective_gain": match.objective / max(match.objective_identity, 1e-12),
        }
        if cfg.narrow_hidden:  # the width dependence (Ainsworth et al. 2023, Fig. 5), reported only
            na, nb = (_train(ctx.seed, f"narrow-{k}", x, y, cfg, cfg.narrow_hidden) for k in "ab")
            nm = apply_permutation(nb, weight_matching(na, nb).perms)
            values["narrow_naive_barrier"] = loss_barrier(na, nb, train_loss, cfg.n_points).barrier
            values["narrow_matched_barrier"] = loss_barrier(na, nm, train_loss, cfg.n_points).barrier
            values["narrow_train_acc_min"] = min(_acc(na, x, y), _acc(nb, x, y))
        nulls = {
            "identity": {"barrier": res["naive"].barrier},
            "random_permutation": {"barrier": res["random"].barrier},
        }
        table = [
            {"t": t, "loss_naive": ln, "loss_matched": lm, "loss_random": lr}
            for t, ln, lm, lr in zip(res["naive"].ts, res["naive"].losses, res["matched"].losses, res["random"].losses)
        ]
        if ctx.keep_figures:
            ctx.save_figure("loss_along_line", _figure(res))
        return Measurement(values=values, nulls=nulls, tables={"line": table})

    def summarize(self, cfg, m):
        return (
            f"training-loss barrier: naive {m.get('naive_barrier', float('nan')):.3f} nats, after weight matching "
            f"{m.get('barrier', float('nan')):.3f}, after a random permutation "
            f"{m.get('random_barrier', float('nan')):.3f} (test-error barrier naive "
            f"{m.get('test_err_barrier_naive', float('nan')):.3f}, matched "
            f"{m.get('test_err_barrier_matched', float('nan')):.3f}; narrow MLP naive "
            f"{m.get('narrow_naive_barrier', float('nan')):.3f}, matched "
            f"{m.get('narrow_matched_barrier', float('nan')):.3f}; seed means)"
        )


def _figure(res):
    from neumo.report.figures import line_plot

    fig, _ = line_plot(
        {k: (r.ts, r.losses) for k, r in res.items()},
        xlabel="t",
        ylabel="training cross-entropy",
        title="loss along (1 - t) a + t P(b)",
    )
    return fig


__all__ = ["Rebasin", "RebasinConfig"]
