"""The catalogue of every config kind neumo ships: one per study (``study:<id>``) plus the kinds that
instruments register with :func:`neumo.config.register_kind` (e.g. ``memory-sweep``).

It sits above the layers (like the CLI) because it has to know them all; ``neumo.config`` stays a
foundation that imports nothing of neumo's.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from neumo.config import StrictModel, load_file, registered_kinds, split_kind, validate
from neumo.errors import ConfigError

# Modules that register config kinds when imported.
_KIND_PROVIDERS = ("neumo.memory.bench.sweep",)


def kinds() -> dict[str, Callable[[], type[StrictModel]]]:
    from neumo.studies.registry import all_studies

    for mod in _KIND_PROVIDERS:
        importlib.import_module(mod)
    out = registered_kinds()
    for sid, study in all_studies().items():
        out.setdefault(f"study:{sid}", lambda s=study: s.Config)
    return out


def validate_document(doc: dict[str, Any], source: str = "config") -> tuple[str, StrictModel]:
    kind, body = split_kind(doc, source)
    known = kinds()
    if kind not in known:
        raise ConfigError(f"{source}: unknown kind {kind!r}; known kinds: {', '.join(sorted(known))}",
                          [("kind", f"unknown kind {kind!r}")])
    return kind, validate(known[kind](), body, source)


def validate_file(path: str | Path) -> tuple[str, StrictModel]:
    return validate_document(load_file(path), str(path))
