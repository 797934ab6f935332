"""Null controls for claims about updates and weights: what the same measurement gives when there is
nothing to learn (shuffled labels) or when the update has no direction preference (a random walk).

A random walk here is the update a layer would get from random per-example error signals on the *real*
inputs of that layer: ``sum_t D_t X_t^T`` with ``D_t`` i.i.d. Gaussian. Per-example gradients of a linear
layer are outer products ``delta x^T``, so this null keeps everything the inputs impose on the update (their
span and covariance) and removes what the labels and the loss add. It is rescaled to a given Frobenius
norm, so it is an update "of the same norm".
"""

from __future__ import annotations

import torch

from neumo.seeding import make_generator


def shuffled_labels(y: torch.Tensor, seed: int) -> torch.Tensor:
    """A fixed random permutation of ``y`` (drawn from ``seed``): the label-free null of a training run."""
    perm = torch.randperm(y.shape[0], generator=make_generator(seed, "null-shuffled-labels"))
    return y[perm]


def random_walk_update(inputs: list[torch.Tensor], out_dim: int, norm: float, seed: int) -> torch.Tensor:
    """``(out_dim, in_dim)`` update ``sum_t D_t X_t^T`` over the input batches ``X_t`` (each ``(B, in_dim)``),
    ``D_t`` i.i.d. standard normal ``(out_dim, B)``, rescaled to Frobenius norm ``norm``."""
    if not inputs:
        raise ValueError("random_walk_update needs at least one input batch")
    g = make_generator(seed, "null-random-walk")
    acc = torch.zeros(out_dim, inputs[0].shape[1], dtype=torch.float64)
    for x in inputs:
        x = x.detach().to(torch.float64)
        d = torch.randn(out_dim, x.shape[0], generator=g, dtype=torch.float64)
        acc += d @ x
    f = float(acc.norm())
    if f == 0.0:
        raise ValueError("the inputs are all zero; a random walk on them has no direction")
    return (acc * (float(norm) / f)).to(inputs[0].dtype)


def gaussian_like(w: torch.Tensor, seed: int) -> torch.Tensor:
    """An i.i.d. Gaussian matrix of ``w``'s shape and Frobenius norm (the isotropic null)."""
    g = make_generator(seed, "null-gaussian")
    r = torch.randn(w.shape, generator=g, dtype=torch.float64)
    return (r * (float(w.norm()) / float(r.norm()))).to(w.dtype)


__all__ = ["gaussian_like", "random_walk_update", "shuffled_labels"]
