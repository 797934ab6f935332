"""Models registered by name, built without touching the global RNG.

``build_model(name, seed=..., **kwargs)`` constructs the module on the ``meta`` device (no random draws),
materialises it on CPU and initialises every parameter from an explicit generator (:func:`init_`).
Models therefore must not compute buffers in ``__init__``; a module that needs one implements
``reset_buffers()``, which ``init_`` calls.
"""

from __future__ import annotations

import inspect
from typing import Callable

import torch

from neumo.errors import NeumoError
from neumo.nn.init import init_

_MODELS: dict[str, type[torch.nn.Module]] = {}


def register_model(name: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered")
        _MODELS[name] = cls
        cls.registry_name = name
        return cls

    return deco


def model_names() -> list[str]:
    _load_builtin()
    return sorted(_MODELS)


def model_class(name: str) -> type[torch.nn.Module]:
    _load_builtin()
    if name not in _MODELS:
        raise NeumoError(f"unknown model {name!r}; available: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def build_model(name: str, seed: int, device: str | torch.device = "cpu", **kwargs) -> torch.nn.Module:
    cls = model_class(name)
    sig = inspect.signature(cls.__init__)
    unknown = [k for k in kwargs if k not in sig.parameters]
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
        raise NeumoError(f"model {name!r} has no option(s) {', '.join(map(repr, unknown))}; "
                         f"options: {', '.join(p for p in sig.parameters if p != 'self')}")
    with torch.device("meta"):
        model = cls(**kwargs)
    model = model.to_empty(device=device)
    init_(model, seed)
    return model


def _load_builtin() -> None:
    import importlib
    import pkgutil

    import neumo.nn as pkg

    for m in pkgutil.iter_modules(pkg.__path__):
        if m.name not in ("registry", "init"):
            importlib.import_module(f"neumo.nn.{m.name}")
