"""The study registry: every module in ``neumo.studies`` is imported once and its studies registered."""

from __future__ import annotations

import importlib
import pkgutil

from neumo.errors import NeumoError
from neumo.studies.base import TREATMENT, Study, Thresholds

_STUDIES: dict[str, type[Study]] = {}
_loaded = False


def register_study(cls: type[Study]) -> type[Study]:
    sid = cls.id
    if cls.measure is Study.measure:
        raise TypeError(f"study {sid!r} must define measure(cfg, ctx) -> Measurement")
    if sid in _STUDIES and _STUDIES[sid] is not cls:
        raise ValueError(f"study id {sid!r} is registered twice")
    for attr in ("instrument", "claim", "Config"):
        if not hasattr(cls, attr):
            raise TypeError(f"study {sid!r} must define {attr!r}")
    _check_contract(cls)
    _STUDIES[sid] = cls
    return cls


def _check_contract(cls: type[Study]) -> None:
    """Every threshold a check or gate reads exists and is justified; nulls that checks name are declared."""
    sid = cls.id
    field = cls.Config.model_fields.get("thresholds")
    if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, Thresholds)):
        raise TypeError(f"study {sid!r}: Config needs a 'thresholds' section (a neumo.studies.Thresholds)")
    thr_cls = field.annotation
    for name, why in thr_cls.justifications().items():
        if not why.strip():
            raise TypeError(
                f"study {sid!r}: threshold {name!r} needs a one-line justification (Field(description=...))"
            )
    cfg, study = cls.Config(), cls()
    checks = list(study.checks(cfg))
    specs = checks + list(study.preconditions(cfg))
    for spec in specs:
        if spec.threshold not in thr_cls.model_fields:
            raise TypeError(f"study {sid!r}: {spec.name!r} reads thresholds.{spec.threshold}, which is not declared")
    arms = {TREATMENT, *cls.nulls}
    for spec in checks:
        for arm in ([spec.null] if spec.null else []) + list(spec.controls):
            if arm not in arms:
                raise TypeError(f"study {sid!r}: check {spec.name!r} names null {arm!r}, not in Study.nulls")


def _load() -> None:
    global _loaded
    if _loaded:
        return
    import neumo.studies as pkg

    for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if m.name not in ("base", "registry", "runner", "lab", "judge") and not m.name.endswith("_common"):
            importlib.import_module(f"neumo.studies.{m.name}")
    _loaded = True


def all_studies() -> dict[str, type[Study]]:
    _load()
    order = {"foundation": 0, "spectral": 1, "detect": 2, "memory": 3}
    return dict(sorted(_STUDIES.items(), key=lambda kv: (order.get(kv[1].instrument, 9), kv[0])))


def get_study(sid: str) -> type[Study]:
    studies = all_studies()
    if sid not in studies:
        raise NeumoError(f"unknown study {sid!r}; list them with 'neumo study list' (known: {', '.join(studies)})")
    return studies[sid]
