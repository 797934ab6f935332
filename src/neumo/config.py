"""Configs: pydantic v2 models that refuse unknown keys, loaded from YAML or TOML, with dotted overrides.

A config file names what it configures with one top-level key, ``kind`` (``study:<id>`` for a study,
or any kind registered with :func:`register_kind`), or ``study: <id>`` as a shorthand. Every run writes
its resolved config next to its results (``config.yaml``).
"""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from neumo.errors import ConfigError, NeumoError


class StrictModel(BaseModel):
    """Base for every neumo config: unknown keys are errors, assignments are validated."""

    # allow_inf_nan=False: a NaN or infinite learning rate, threshold or size is a mistake, not a setting
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False)


M = TypeVar("M", bound=StrictModel)


# ---------------------------------------------------------------- files


class _NoAliasLoader(yaml.SafeLoader):
    """A safe loader that refuses anchors and aliases: no config needs them, and they allow alias bombs."""


def load_yaml_no_aliases(text: str, source: str = "config") -> Any:
    loader = _NoAliasLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _has_alias(node, depth=0, source=source):
            raise NeumoError(
                f"{source}: YAML anchors/aliases (&name, *name) are not allowed in neumo configs "
                "(they allow alias bombs); write the values out"
            )
        return loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()


MAX_NESTING = 64


def _has_alias(node: Any, depth: int, source: str, seen: set[int] | None = None) -> bool:
    """True if a composed YAML node graph reuses a node (an alias); refuses nesting deeper than MAX_NESTING."""
    seen = set() if seen is None else seen
    if depth > MAX_NESTING:
        raise NeumoError(f"{source}: nested deeper than {MAX_NESTING} levels; flatten it")
    if id(node) in seen:
        return True
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        return any(_has_alias(n, depth + 1, source, seen) for n in node.value)
    if isinstance(node, yaml.MappingNode):
        return any(
            _has_alias(k, depth + 1, source, seen) or _has_alias(v, depth + 1, source, seen) for k, v in node.value
        )
    return False


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file into a dict."""
    p = Path(path)
    if not p.is_file():
        raise NeumoError(f"config file {str(p)!r} does not exist; check the path")
    from neumo.bounded import MAX_CONFIG_BYTES, decode_utf8, read_limited

    text = decode_utf8(read_limited(p, "NEUMO_MAX_CONFIG_BYTES", MAX_CONFIG_BYTES, "config file"), f"config file {p}")
    try:
        if p.suffix == ".toml":
            data = tomllib.loads(text)
        elif p.suffix in (".yaml", ".yml", ".json"):
            data = load_yaml_no_aliases(text, str(p)) if p.suffix != ".json" else json.loads(text)
        else:
            raise NeumoError(f"config file {str(p)!r} must end in .yaml, .yml, .toml or .json")
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        first = str(e).strip().splitlines()[0]
        raise NeumoError(f"config file {str(p)!r} is not valid {p.suffix[1:].upper()}: {first}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise NeumoError(f"config file {str(p)!r} must contain a mapping at the top level")
    return data


# ---------------------------------------------------------------- overrides


def _parse_value(raw: str) -> Any:
    """``--set`` values are parsed as YAML scalars/lists (``3``, ``0.1``, ``true``, ``[1,2]``, ``null``)."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides to a nested dict (returns a copy)."""
    out = copy.deepcopy(data)
    for item in overrides or []:
        if "=" not in item:
            raise NeumoError(f"override {item!r} must look like key.path=value (e.g. train.lr=0.01)")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not key.strip() or any(not k.strip() for k in parts):
            raise NeumoError(
                f"override {item!r} has an empty key or an empty part between dots; write it as section.key=value"
            )
        parts = [k.strip() for k in parts]
        node = out
        for k in parts[:-1]:
            nxt = node.get(k)
            if nxt is None:
                nxt = node[k] = {}
            if not isinstance(nxt, dict):
                raise NeumoError(f"override {item!r}: {k!r} is not a section")
            node = nxt
        node[parts[-1]] = _parse_value(raw)
    return out


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# ---------------------------------------------------------------- validation


def format_errors(err: ValidationError) -> list[tuple[str, str]]:
    out = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"]) or "<root>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (misspelled?)"
        out.append((path, msg))
    return out


def validate(model: type[M], data: dict[str, Any], source: str = "config") -> M:
    """Validate ``data`` against ``model``; on failure raise :class:`ConfigError` listing every error."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errs = format_errors(e)
        listing = "; ".join(f"{p}: {m}" for p, m in errs)
        raise ConfigError(f"{source} is invalid ({len(errs)} error(s)): {listing}", errs) from None


# ---------------------------------------------------------------- kinds

_KINDS: dict[str, Callable[[], type[StrictModel]]] = {}


def register_kind(name: str, schema: Callable[[], type[StrictModel]]) -> None:
    """Register a config kind (a name and a callable returning its pydantic model).

    The catalogue of every kind neumo ships (studies included) is :func:`neumo.catalog.kinds`.
    """
    _KINDS[name] = schema


def registered_kinds() -> dict[str, Callable[[], type[StrictModel]]]:
    return dict(_KINDS)


def split_kind(doc: dict[str, Any], source: str) -> tuple[str, dict[str, Any]]:
    body = dict(doc)
    if "kind" in body:
        kind = str(body.pop("kind"))
    elif "study" in body:
        kind = f"study:{body.pop('study')}"
    else:
        raise ConfigError(
            f"{source}: say what it configures with a top-level 'kind:' (or 'study: ID')", [("kind", "missing")]
        )
    return kind, body


def shipped_configs() -> list[Path]:
    """Every config file shipped inside the package (``neumo/configs``)."""
    root = Path(__file__).parent / "configs"
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml", ".toml"))
