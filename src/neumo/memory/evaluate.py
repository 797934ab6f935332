"""Accuracy of a sequence model on a task batch, with the model's own outputs fed back where the task
says so (scratchpads, arithmetic answers): teacher forcing would overstate what the model can do.

Metrics: ``acc`` (every target token), ``final_acc`` (the last target of each sequence) and
``seq_acc`` (every target of a sequence right).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neumo.memory.tasks.base import IGNORE, TaskBatch


def masked_ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over positions with a target; logits (B, T, C), targets (B, T)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)


@torch.no_grad()
def rollout(model: torch.nn.Module, batch: TaskBatch) -> torch.Tensor:
    """Greedy predictions (B, T) where every feedback input is the model's previous prediction."""
    ids = batch.inputs.clone()
    if batch.feedback is None or not bool(batch.feedback.any()):
        return model(ids).argmax(-1)
    cols = torch.nonzero(batch.feedback).flatten().tolist()
    for t in cols:
        pred = model(ids[:, :t]).argmax(-1)  # (B, t)
        ids[:, t] = batch.class_token_offset + pred[:, t - 1]
    return model(ids).argmax(-1)


def scores(pred: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
    """acc / final_acc / seq_acc from predictions and targets (B, T)."""
    mask = targets != IGNORE
    hit = (pred == targets) & mask
    last = mask.shape[1] - 1 - mask.flip(1).int().argmax(1)  # index of the last target per row
    rows = torch.arange(len(targets))
    has = mask.any(1)
    return {
        "acc": int(hit.sum()) / max(int(mask.sum()), 1),
        "final_acc": float(hit[rows, last][has].double().mean()) if has.any() else float("nan"),
        "seq_acc": float(((hit | ~mask).all(1))[has].double().mean()) if has.any() else float("nan"),
    }


def evaluate(model: torch.nn.Module, batch: TaskBatch, feed_back: bool = True) -> dict[str, float]:
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            pred = rollout(model, batch) if feed_back else model(batch.inputs).argmax(-1)
    finally:
        model.train(was)
    return scores(pred, batch.targets)
