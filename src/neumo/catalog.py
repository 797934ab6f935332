"""The catalogue of every config kind neumo ships: one per study (``study:<id>``) plus the kinds that
instruments register with :func:`neumo.config.register_kind` (e.g. ``memory-sweep``).

It sits above the layers (like the CLI) because it has to know them all; ``neumo.config`` stays a
foundation that imports nothing of neumo's.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional

from pydantic import Field

from neumo.config import StrictModel, load_file, registered_kinds, split_kind, validate
from neumo.errors import ConfigError

if TYPE_CHECKING:
    from neumo.studies.base import Study

# Modules that register config kinds when imported.
_KIND_PROVIDERS = ("neumo.memory.bench.sweep",)


class StudyRunSettings(StrictModel):
    """How a study run was run: the keys a saved study ``config.yaml`` holds beside its resolved ``config``."""

    preset: Literal["quick", "full"] = "quick"
    seed: int = 0
    seeds: int = Field(1, ge=1, le=100)
    checkpoint_every: int = Field(0, ge=0)
    sinks: list[Literal["tensorboard", "mlflow"]] = Field(
        default_factory=list, description="metric sinks besides metrics.jsonl"
    )


class LabConfig(StrictModel):
    """A lab run's document (``kind: lab``), as ``neumo lab`` saves it and reads it back with ``--config``."""

    preset: Literal["quick", "full"] = "quick"
    studies: list[str] = Field(default_factory=list)
    seed: int = 0
    seeds: int = Field(3, ge=1, le=100)
    jobs: Optional[int] = Field(None, ge=1, le=64, description="default: the lab's own (2 or #cores)")
    sinks: list[Literal["tensorboard", "mlflow"]] = Field(
        default_factory=list, description="metric sinks of every study's units"
    )
    ray: Optional[str] = Field(None, description="Ray address ('local' starts one) to run the studies on")


_RUN_KEYS = set(StudyRunSettings.model_fields) | {"config"}


def split_study_run(body: dict[str, Any], source: str) -> tuple[dict[str, Any], Optional[StudyRunSettings]]:
    """A study document is either a config body or a saved run document (its settings plus ``config``).

    Returns (config body, settings or None), so that a run's own ``config.yaml`` validates and re-runs.
    """
    if "config" not in body or not set(body) <= _RUN_KEYS:
        return body, None
    if not isinstance(body["config"], dict):
        raise ConfigError(f"{source}: 'config' must be a mapping", [("config", "not a mapping")])
    settings = validate(StudyRunSettings, {k: v for k, v in body.items() if k != "config"}, source)
    return body["config"], settings


_MEMORY_RUN_KEYS = {"memory_run", "checkpoint_every", "sinks"}  # a memory run's saved config.yaml


def _memory_run_schema() -> type[StrictModel]:
    from neumo.memory.train import MemoryRunConfig

    return MemoryRunConfig


def _study_schema(study: type[Study]) -> Callable[[], type[StrictModel]]:
    return lambda: study.Config


def kinds() -> dict[str, Callable[[], type[StrictModel]]]:
    from neumo.studies.registry import all_studies

    for mod in _KIND_PROVIDERS:
        importlib.import_module(mod)
    out = registered_kinds()
    out.setdefault("lab", lambda: LabConfig)
    out.setdefault("memory-run", _memory_run_schema)
    for sid, study in all_studies().items():
        out.setdefault(f"study:{sid}", _study_schema(study))
    return out


def document_kind(doc: dict[str, Any], source: str = "config") -> tuple[str, dict[str, Any]]:
    """(kind, body) of a config document or of a run's saved ``config.yaml`` (study, memory run, sweep, lab)."""
    if (
        isinstance(doc, dict)
        and "memory_run" in doc
        and set(doc) <= _MEMORY_RUN_KEYS
        and isinstance(doc["memory_run"], dict)
    ):
        ck = doc.get("checkpoint_every", 0)
        if not isinstance(ck, int) or isinstance(ck, bool) or ck < 0:
            raise ConfigError(
                f"{source}: checkpoint_every must be a whole number >= 0, got {ck!r}",
                [("checkpoint_every", "not a whole number >= 0")],
            )
        sinks = doc.get("sinks", [])
        if not isinstance(sinks, list) or any(x not in ("tensorboard", "mlflow") for x in sinks):
            raise ConfigError(
                f"{source}: sinks must be a list of 'tensorboard' / 'mlflow', got {sinks!r}",
                [("sinks", "unknown sink")],
            )
        return "memory-run", dict(doc["memory_run"])  # what `neumo memory run` saves
    return split_kind(doc, source)


def validate_document(doc: dict[str, Any], source: str = "config") -> tuple[str, StrictModel]:
    if not isinstance(doc, dict):
        raise ConfigError(
            f"{source}: a config is a mapping at the top level, got {type(doc).__name__}", [("", "not a mapping")]
        )
    kind, body = document_kind(doc, source)
    known = kinds()
    if kind not in known:
        raise ConfigError(
            f"{source}: unknown kind {kind!r}; known kinds: {', '.join(sorted(known))}",
            [("kind", f"unknown kind {kind!r}")],
        )
    if kind.startswith("study:"):
        body, _ = split_study_run(body, source)
    return kind, validate(known[kind](), body, source)


def validate_file(path: str | Path) -> tuple[str, StrictModel]:
    return validate_document(load_file(path), str(path))
