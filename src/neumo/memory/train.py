"""Train one registered model on one task: lengths sampled from a training range, held-out evaluation
at other lengths, early stopping at a target accuracy, a step budget. Used by the sweeps, the studies
and ``neumo memory run``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import Field, model_validator

from neumo.config import StrictModel
from neumo.errors import NeumoError
from neumo.memory.evaluate import evaluate, masked_ce
from neumo.memory.tasks import Task, make_task, task_rng
from neumo.nn import build_model
from neumo.nn.base import SequenceModel
from neumo.nn.registry import check_model
from neumo.train import Trainer, TrainConfig, make_optimizer


MAX_LENGTH = 100_000  # a sample length; the longest shipped evaluation is a few hundred tokens


class MemoryRunConfig(StrictModel):
    task: str = "parity"
    task_knobs: dict[str, Any] = Field(default_factory=dict)
    model: str = "lstm"
    model_knobs: dict[str, Any] = Field(default_factory=dict)
    train: TrainConfig = TrainConfig(steps=500, batch_size=64, lr=3e-3, eval_every=50, log_every=10)
    train_lengths: list[int] | None = Field(
        None, description="lengths sampled during training (default: the task's own length)"
    )
    eval_lengths: list[int] | None = Field(None, description="held-out lengths (default: train max)")
    eval_size: int = Field(256, ge=1)
    target_acc: float | None = Field(None, gt=0, le=1, description="early stop once reached")
    stop_metric: str = "acc"
    patience: int | None = Field(
        None,
        ge=1,
        description="also stop on a plateau: once the stop metric's "
        "best value has not risen by min_delta for this many evaluations",
    )
    min_delta: float = Field(0.01, ge=0, description="the rise that counts as progress for patience")
    feed_back: bool = True
    seed: int = 0

    @model_validator(mode="after")
    def _check(self):
        for name in ("train_lengths", "eval_lengths"):
            v = getattr(self, name)
            if v is not None and (not v or min(v) < 1 or max(v) > MAX_LENGTH):
                raise NeumoError(f"{name} must be a non-empty list of lengths in [1, {MAX_LENGTH}]; got {v}")
        # typed knobs: the task's and the model's own strict configs, checked now rather than in a worker
        task = make_task(self.task, **self.task_knobs)
        check_model(self.model, **model_kwargs(self, task))
        return self


@dataclass
class MemoryResult:
    model: SequenceModel
    task: Task
    steps: int
    stopped_early: bool
    eval: dict[int, dict[str, float]]  # length -> metrics
    history: list[dict[str, Any]] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """Tidy rows: one per (eval length, metric)."""
        return [{"length": L, "metric": k, "value": v} for L, m in self.eval.items() for k, v in m.items()]


def model_for_task(name: str, task: Task, seed: int, max_len: int, **knobs) -> SequenceModel:
    """Build ``name`` with the task's vocabulary and classes; learned positions cover ``max_len``."""
    return _sequence_model(name, build_model(name, seed=seed, **_task_model_kwargs(name, task, max_len, knobs)))


def _sequence_model(name: str, model: torch.nn.Module) -> SequenceModel:
    if not isinstance(model, SequenceModel):
        raise NeumoError(
            f"model {name!r} is not a sequence model (a neumo.nn.base.SequenceModel); a memory run needs one"
        )
    return model


def _task_model_kwargs(name: str, task: Task, max_len: int, knobs: dict[str, Any]) -> dict[str, Any]:
    knobs = dict(knobs)
    if name in ("transformer",):
        knobs.setdefault("max_len", max_len)
    return {"vocab_size": task.vocab_size, "out_dim": task.n_classes, **knobs}


def model_kwargs(cfg: MemoryRunConfig, task: Task) -> dict[str, Any]:
    """The options a run builds its model with: the task's vocabulary and classes, then its knobs."""
    longest = max(_seq_len(task, L) for L in set().union(*run_lengths(cfg, task)))
    return _task_model_kwargs(cfg.model, task, longest, cfg.model_knobs)


def run_lengths(cfg: MemoryRunConfig, task: Task) -> tuple[list[int], list[int]]:
    """(training lengths, evaluation lengths) of a run, with their defaults filled in."""
    train_lengths = cfg.train_lengths or [task.default_length()]
    return train_lengths, cfg.eval_lengths or [max(train_lengths)]


def model_for_run(cfg: MemoryRunConfig, task: Task) -> SequenceModel:
    """The untrained model of a run; learned positions cover its longest training or evaluation sample."""
    return _sequence_model(cfg.model, build_model(cfg.model, seed=cfg.seed, **model_kwargs(cfg, task)))


def train_on_task(
    cfg: MemoryRunConfig,
    run=None,
    progress: bool = False,
    model: SequenceModel | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
) -> MemoryResult:
    """Train and evaluate; with ``run`` and ``checkpoint_every`` it checkpoints, and ``resume`` continues from
    the run's latest checkpoint with the batches, the stop rule's state and the metrics it would have had."""
    task = make_task(cfg.task, **cfg.task_knobs)
    train_lengths, eval_lengths = run_lengths(cfg, task)
    model = model or model_for_run(cfg, task)
    opt = make_optimizer(model.parameters(), cfg.train)
    bs = cfg.train.batch_size

    def batch_fn(step: int):
        rng = task_rng(cfg.seed, "train", step)
        L = int(train_lengths[int(rng.integers(len(train_lengths)))])
        return task.sample(bs, rng, L)

    def loss_fn(m, batch):
        return masked_ce(m(batch.inputs), batch.targets)

    probe = task.sample(cfg.eval_size, task_rng(cfg.seed, "test", "stop"), max(train_lengths))

    def eval_fn(m):
        return evaluate(m, probe, cfg.feed_back)

    stop = _stop_rule(cfg)
    trainer = Trainer(
        model,
        opt,
        loss_fn,
        batch_fn,
        cfg.train.steps,
        eval_fn=eval_fn,
        eval_every=cfg.train.eval_every,
        log_every=cfg.train.log_every,
        run=run,
        grad_clip=cfg.train.grad_clip,
        progress=progress,
        stop_fn=stop,
        checkpoint_every=checkpoint_every,
    )
    done = False
    if resume:
        trainer.restore()
        # the stop rule's memory (best value, evaluations since) is rebuilt from the restored evaluations;
        # the last one's answer says whether the interrupted run had already stopped
        if stop is not None:
            for ev in trainer.history:
                done = stop(ev)
        trainer.stopped_early = done
    if not done:
        trainer.fit()
    steps = trainer.history[-1]["step"] if trainer.history else cfg.train.steps
    results = {
        int(L): evaluate(model, task.sample(cfg.eval_size, task_rng(cfg.seed, "test", L), L), cfg.feed_back)
        for L in eval_lengths
    }
    return MemoryResult(model, task, steps, trainer.stopped_early, results, trainer.history)


def _stop_rule(cfg: MemoryRunConfig):
    """``stop(eval_metrics) -> bool``: the target is reached, or (with ``patience``) a plateau; None: never."""
    if cfg.target_acc is None and cfg.patience is None:
        return None
    best, since = [float("-inf")], [0]

    def stop(ev: dict) -> bool:
        v = float(ev.get(cfg.stop_metric, 0.0))
        if cfg.target_acc is not None and v >= cfg.target_acc:
            return True
        if cfg.patience is None:
            return False
        if v >= best[0] + cfg.min_delta:
            best[0], since[0] = v, 0
        else:
            since[0] += 1
        return since[0] >= cfg.patience

    return stop


def _seq_len(task: Task, L: int) -> int:
    """Token length of a sample at size ``L`` (learned positions must cover it)."""
    return int(task.sample(1, task_rng(0, "probe", "shape"), L).inputs.shape[1])
