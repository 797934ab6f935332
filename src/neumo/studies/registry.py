"""The study registry: every module in ``neumo.studies`` is imported once and its studies registered."""

from __future__ import annotations

import importlib
import pkgutil

from neumo.errors import NeumoError
from neumo.studies.base import Study

_STUDIES: dict[str, type[Study]] = {}
_loaded = False


def register_study(cls: type[Study]) -> type[Study]:
    sid = cls.id
    if sid in _STUDIES and _STUDIES[sid] is not cls:
        raise ValueError(f"study id {sid!r} is registered twice")
    for attr in ("instrument", "claim", "Config"):
        if not hasattr(cls, attr):
            raise TypeError(f"study {sid!r} must define {attr!r}")
    _STUDIES[sid] = cls
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    import neumo.studies as pkg

    for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if m.name not in ("base", "registry", "runner", "lab"):
            importlib.import_module(f"neumo.studies.{m.name}")
    _loaded = True


def all_studies() -> dict[str, type[Study]]:
    _load()
    order = {"foundation": 0, "spectral": 1, "detect": 2, "memory": 3}
    return dict(sorted(_STUDIES.items(), key=lambda kv: (order.get(kv[1].instrument, 9), kv[0])))


def get_study(sid: str) -> type[Study]:
    studies = all_studies()
    if sid not in studies:
        raise NeumoError(f"unknown study {sid!r}; list them with 'neumo study list' "
                         f"(known: {', '.join(studies)})")
    return studies[sid]
