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

from neumo.errors import NeumoError
from neumo.seeding import make_generator


def shuffled_labels(y: torch.Tensor, seed: int) -> torch.Tensor:
    """A fixed random permutation of ``y`` (drawn from ``seed``): the label-free null of a training run."""
    perm = torch.randperm(y.shape[0], generator=make_generator(seed, "null-shuffled-labels"))
    return y[perm]


def random_walk_update(inputs: list[torch.Tensor], out_dim: int, norm: float, seed: int) -> torch.Tensor:
    """``(out_dim, in_dim)`` update ``sum_t D_t X_t^T`` over the input batches ``X_t`` (each ``(B, in_dim)``),
    ``D_t`` i.i.d. standard normal ``(out_dim, B)``, rescaled to Frobenius norm ``norm``.

    Its rows are i.i.d. ``N(0, G)`` with ``G = sum_t X_t^T X_t``, so it is drawn as ``Z G^{1/2}``
    (:func:`random_walk_from_gram`): the same distribution at the cost of one Gram matrix."""
    if not inputs:
        raise ValueError("random_walk_update needs at least one input batch")
    gram = torch.zeros(inputs[0].shape[1], inputs[0].shape[1], dtype=torch.float64)
    for x in inputs:
        x = x.detach().to(torch.float64)
        gram += x.T @ x
    return random_walk_from_gram(gram, out_dim, norm, seed).to(inputs[0].dtype)


def random_walk_from_gram(gram: torch.Tensor, out_dim: int, norm: float, seed: int) -> torch.Tensor:
    """``Z G^{1/2}`` (``Z`` ``(out_dim, in)`` standard normal from ``seed``) rescaled to Frobenius ``norm``."""
    lam, vec = torch.linalg.eigh(gram.to(torch.float64))
    root = (vec * lam.clamp(min=0).sqrt()) @ vec.T
    z = torch.randn(out_dim, gram.shape[0], generator=make_generator(seed, "null-random-walk"), dtype=torch.float64)
    acc = z @ root
    f = float(acc.norm())
    if f == 0.0:
        raise NeumoError("the layer saw no training input (or only zeros); no random walk to compare with")
    return acc * (float(norm) / f)


class RandomWalkHook:
    """Forward hook for the random-walk null of a linear layer, streaming with fixed-size state.

    The null is ``R = sum_t D_t X_t^T`` over the layer's training inputs ``X_t`` (rows = examples or
    tokens) with ``D_t`` i.i.d. standard normal, as :func:`random_walk_update`.
    Its rows are independent ``N(0, G)`` with ``G = sum_t X_t^T X_t``, so the hook accumulates only the
    ``(in, in)`` Gram matrix and draws ``R = Z G^{1/2}`` (``Z`` standard normal) once at the end: the
    same distribution as the per-step sum, at a fraction of its cost.
    """

    def __init__(self, module: torch.nn.Module, out_dim: int, in_dim: int, seed: int):
        self.seed, self.out_dim = seed, out_dim
        self.gram = torch.zeros(in_dim, in_dim, dtype=torch.float64)
        self.handle = module.register_forward_hook(self)

    def __call__(self, module, inputs, output) -> None:
        if not module.training:
            return
        x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).to(torch.float64)
        self.gram += x.T @ x

    def update(self, norm: float) -> torch.Tensor:
        """The random walk rescaled to Frobenius norm ``norm`` (and the hook removed)."""
        self.handle.remove()
        return random_walk_from_gram(self.gram, self.out_dim, norm, self.seed)


def gaussian_like(w: torch.Tensor, seed: int) -> torch.Tensor:
    """An i.i.d. Gaussian matrix of ``w``'s shape and Frobenius norm (the isotropic null)."""
    g = make_generator(seed, "null-gaussian")
    r = torch.randn(w.shape, generator=g, dtype=torch.float64)
    return (r * (float(w.norm()) / float(r.norm()))).to(w.dtype)


def random_orthonormal(dim: int, k: int, seed: int) -> torch.Tensor:
    """A (dim, k) float64 matrix with orthonormal columns spanning a uniformly random (Haar) k-dimensional
    subspace: QR of a Gaussian matrix with the signs of R's diagonal moved into Q (the random-basis null)."""
    if not 1 <= int(k) <= int(dim):
        raise NeumoError(f"The 'k' parameter must be between 1 and dim={dim}. Got {k} instead.")
    g = make_generator(seed, "null-orthonormal")
    q, r = torch.linalg.qr(torch.randn(int(dim), int(k), generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(()))


__all__ = [
    "RandomWalkHook",
    "gaussian_like",
    "random_orthonormal",
    "random_walk_from_gram",
    "random_walk_update",
    "shuffled_labels",
]
