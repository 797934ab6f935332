"""Models registered by name, built without touching the global RNG.

``build_model(name, seed=..., **kwargs)`` constructs the module on the ``meta`` device (no random draws),
materialises it on CPU and initialises every parameter from an explicit generator (:func:`init_`).
Models therefore must not compute buffers in ``__init__``; a module that needs one implements
``reset_buffers()``, which ``init_`` calls.
"""

from __future__ import annotations

import functools
import inspect
import typing
from typing import Any, Callable, TypeVar

import torch
from pydantic import create_model

from neumo.bounded import limit_from_env
from neumo.config import StrictModel, validate
from neumo.errors import NeumoError
from neumo.nn.init import init_

MAX_PARAMS = 500_000_000  # 2 GB of fp32 weights: far above what a CPU study trains
MAX_PARAMS_ENV = "NEUMO_MAX_MODEL_PARAMS"

_MODELS: dict[str, type[torch.nn.Module]] = {}
_M = TypeVar("_M", bound=type[torch.nn.Module])


def register_model(name: str) -> Callable[[_M], _M]:
    def deco(cls: _M) -> _M:
        if name in _MODELS and _MODELS[name] is not cls:
            raise NeumoError(
                f"model name {name!r} is already registered by {_MODELS[name].__name__}; pick another name"
            )
        _MODELS[name] = cls
        setattr(cls, "registry_name", name)  # a class attribute added to any registered class
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


@functools.cache
def model_options(name: str) -> type[StrictModel]:
    """A strict config of ``name``'s constructor options, typed from its signature (unknown keys refused)."""
    cls = model_class(name)
    hints = typing.get_type_hints(cls.__init__)
    fields: dict[str, Any] = {}
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        default = ... if p.default is p.empty else p.default
        fields[p.name] = (hints.get(p.name, Any), default)
    return create_model(f"{cls.__name__}Options", __base__=StrictModel, **fields)


def _sizes(key: str, value) -> list[tuple[str, int]]:
    """Integer sizes inside an option value (bools are flags, not sizes)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [(key, value)]
    if isinstance(value, (list, tuple)):
        return [(f"{key}[{i}]", v) for i, v in enumerate(value) if isinstance(v, int) and not isinstance(v, bool)]
    return []


def check_model(name: str, **kwargs) -> torch.nn.Module:
    """Validate ``name``'s options and build it on the ``meta`` device (no memory, no random draws).

    Raises :class:`NeumoError` naming the option: unknown or mistyped options, sizes below 1, options the
    constructor refuses (e.g. ``d_model`` not divisible by ``n_heads``), more than ``$NEUMO_MAX_MODEL_PARAMS``
    parameters.
    """
    schema = model_options(name)
    unknown = [k for k in kwargs if k not in schema.model_fields]
    if unknown:
        raise NeumoError(
            f"model {name!r} has no option(s) {', '.join(map(repr, unknown))}; "
            f"options: {', '.join(schema.model_fields)}"
        )
    opts = validate(schema, kwargs, f"model {name!r} options")
    given = {k: getattr(opts, k) for k in kwargs}
    for key, v in (kv for k, val in given.items() for kv in _sizes(k, val)):
        if v < 1:
            raise NeumoError(f"model {name!r}: option {key} must be >= 1, got {v}")
    try:
        with torch.device("meta"):
            model = model_class(name)(**given)
    except NeumoError:
        raise
    except (ValueError, TypeError, RuntimeError) as e:
        raise NeumoError(f"model {name!r} refuses its options: {e}") from None
    n, limit = sum(p.numel() for p in model.parameters()), limit_from_env(MAX_PARAMS_ENV, MAX_PARAMS)
    if n > limit:
        raise NeumoError(
            f"model {name!r} would have {n:,} parameters, above the limit of {limit:,}; "
            f"make it smaller or raise ${MAX_PARAMS_ENV}"
        )
    return model


def build_model(name: str, seed: int, device: str | torch.device = "cpu", **kwargs) -> torch.nn.Module:
    model = check_model(name, **kwargs).to_empty(device=device)
    init_(model, seed)
    return model


def _load_builtin() -> None:
    import importlib
    import pkgutil

    import neumo.nn as pkg

    for m in pkgutil.iter_modules(pkg.__path__):
        if m.name not in ("registry", "init"):
            importlib.import_module(f"neumo.nn.{m.name}")
