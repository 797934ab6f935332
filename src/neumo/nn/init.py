"""Parameter initialisation from an explicit generator, reproducing PyTorch's defaults.

Linear / Conv: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5));
Embedding ~ N(0, 1) unless the model asks for a std (``embedding_std`` attribute);
RNN/GRU/LSTM: every weight ~ U(-1/sqrt(hidden), 1/sqrt(hidden)); LayerNorm/RMSNorm: ones and zeros.
A module with its own ``reset_parameters_(generator)`` is initialised by that method instead.
Parameters owned directly by a model (e.g. memory tokens) ~ N(0, 0.02^2).
Dropout modules (:class:`neumo.nn.dropout.SeededDropout`) get one generator from ``(seed, "dropout")``;
the initialisation stream ``(seed, "init")`` is the same with or without them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neumo.nn.dropout import seed_dropout_
from neumo.seeding import make_generator


@torch.no_grad()
def init_(model: nn.Module, seed: int) -> nn.Module:
    g = make_generator(seed, "init")
    done: set[int] = set()
    for module in model.modules():
        if hasattr(module, "reset_buffers"):
            module.reset_buffers()  # type: ignore[operator]  # duck-typed hook (Module.__getattr__)
        if hasattr(module, "reset_parameters_") and module is not model:
            module.reset_parameters_(g)  # type: ignore[operator]  # duck-typed hook (Module.__getattr__)
            done.update(id(p) for p in module.parameters())
            continue
        own = list(module.named_parameters(recurse=False))
        if not own:
            continue
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            fan_in = module.weight[0].numel()
            b = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            module.weight.uniform_(-b, b, generator=g)
            if module.bias is not None:
                module.bias.uniform_(-b, b, generator=g)
        elif isinstance(module, nn.Embedding):
            std = getattr(model, "embedding_std", 1.0)
            module.weight.normal_(0.0, std, generator=g)
        elif isinstance(module, (nn.RNNBase,)):
            b = 1.0 / math.sqrt(module.hidden_size)
            for _, p in own:
                p.uniform_(-b, b, generator=g)
        elif isinstance(module, (nn.LayerNorm, nn.RMSNorm)):
            if module.weight is not None:
                module.weight.fill_(1.0)
            bias = getattr(module, "bias", None)  # RMSNorm has none
            if bias is not None:
                bias.zero_()
        else:
            for _, p in own:
                if id(p) not in done:
                    p.normal_(0.0, 0.02, generator=g)
        done.update(id(p) for _, p in own)
    if hasattr(model, "reset_parameters_"):
        model.reset_parameters_(g)  # type: ignore[operator]  # duck-typed hook (Module.__getattr__)
    if hasattr(model, "tie_weights"):
        model.tie_weights()  # type: ignore[operator]  # duck-typed hook (Module.__getattr__)
    seed_dropout_(model, seed)
    return model
