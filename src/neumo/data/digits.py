"""scikit-learn's handwritten digits (1,797 8x8 images, shipped with scikit-learn, no download)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from neumo.seeding import make_generator


@dataclass(frozen=True)
class Split:
    x_train: torch.Tensor  # (N, 64) in [0, 1]
    y_train: torch.Tensor  # (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def num_classes(self) -> int:
        return 10


def load_digits_split(seed: int, test_fraction: float = 0.2, dtype=torch.float32) -> Split:
    """A seeded, stratification-free random split; pixels scaled from 0..16 to [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=dtype) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=make_generator(seed, "digits-split"))
    n_test = int(round(test_fraction * len(y)))
    te, tr = perm[:n_test], perm[n_test:]
    return Split(x[tr], y[tr], x[te], y[te])


def minibatches(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int):
    """``batch_fn(step)``: a batch drawn with replacement from a generator seeded by (seed, step)."""

    def batch_fn(step: int):
        g = make_generator(seed, "train-batch", step)
        idx = torch.randint(0, len(y), (batch_size,), generator=g)
        return x[idx], y[idx]

    return batch_fn
