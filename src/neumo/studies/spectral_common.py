"""Shared setup of the spectral studies: pinned digits MLPs, their losses and small helpers."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neumo.data.digits import load_digits_split
from neumo.nn import build_model
from neumo.train import Trainer, TrainConfig, make_optimizer


def cross_entropy(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)


def half_mse(model, batch):
    """0.5 * mean over samples of ||f(x) - onehot(y)||^2 (Cohen et al. 2021's square loss)."""
    x, y = batch
    out = model(x)
    return 0.5 * ((out - F.one_hot(y, out.shape[-1]).to(out.dtype)) ** 2).sum(1).mean()


LOSSES = {"cross_entropy": cross_entropy, "mse": half_mse}


def digits(seed: int, n: int | None = None, center: bool = False):
    """Train inputs in [0, 1] (optionally centred by their mean), labels, and the test split."""
    d = load_digits_split(seed)
    x, y = d.x_train, d.y_train
    if n is not None:
        x, y = x[:n], y[:n]
    if center:
        x = x - x.mean(0, keepdim=True)
    return x, y, d


def digits_mlp(seed: int, hidden: list[int], activation: str = "relu"):
    return build_model("mlp", seed=seed, in_dim=64, out_dim=10, hidden=hidden, activation=activation)


def sgd_steps(model, loss_fn, batch_fn, steps: int, lr: float) -> None:
    """``steps`` steps of plain SGD on ``batch_fn(0), batch_fn(1), ...`` with the shared trainer."""
    Trainer(
        model, make_optimizer(model.parameters(), TrainConfig(optimizer="sgd", lr=lr)), loss_fn, batch_fn, steps
    ).fit()


def full_batch_adam(model, params, x, y, lr: float, steps: int) -> list[float]:
    """``steps`` full-batch Adam steps on cross-entropy; the loss before each step and after the last
    (``steps + 1`` values)."""
    opt = torch.optim.Adam(params, lr=lr)
    out = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        out.append(float(loss.detach()))
    with torch.no_grad():
        out.append(float(F.cross_entropy(model(x), y)))
    return out


def mirrored(x):
    """Digits (N, 64) flipped left-right as 8x8 images: the fine-tuning task of the low-rank studies."""
    return x.view(-1, 8, 8).flip(2).reshape(-1, 64)


def pretrained_digits_mlp(seed: int, hidden: list[int], steps: int, lr: float):
    """A digits MLP pretrained with full-batch Adam; returns (model, x_train, y_train, split, test accuracy)."""
    x, y, d = digits(seed)
    model = digits_mlp(seed, hidden)
    full_batch_adam(model, list(model.parameters()), x, y, lr, steps)
    with torch.no_grad():
        acc = float((model(d.x_test).argmax(1) == d.y_test).float().mean())
    return model, x, y, d, acc
