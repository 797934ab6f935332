"""Checkpoints in safetensors (never pickle): model, optimizer and callback state in one file.

Tensors are stored under prefixes ``model.``, ``optim.state.<i>.``, ``cb.<i>.``; everything that is not a
tensor (optimizer param groups, step) goes in the file's JSON metadata.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from neumo.runs.atomic import atomic_write_with

_STEP_RE = re.compile(r"^step-(\d+)\.safetensors$")


def _split_optim(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    meta_state: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        meta_state[str(idx)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"optim.state.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                meta_state[str(idx)][k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": meta_state}


def _join_optim(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for idx, scal in meta["scalars"].items():
        state[int(idx)] = dict(scal)
    for key, v in tensors.items():
        _, _, idx, name = key.split(".", 3)
        state.setdefault(int(idx), {})[name] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    callbacks: list | tuple = (),
    extra: dict[str, Any] | None = None,
) -> Path:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta: dict[str, Any] = {"step": int(step), "extra": extra or {}}
    if optimizer is not None:
        t, m = _split_optim(optimizer.state_dict())
        tensors.update(t)
        meta["optim"] = m
    for i, cb in enumerate(callbacks):
        if hasattr(cb, "state_tensors"):
            for k, v in cb.state_tensors().items():
                tensors[f"cb.{i}.{k}"] = v.detach().cpu().contiguous()
    atomic_write_with(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata={"neumo": json.dumps(meta)}))
    return Path(path)


def load_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None, callbacks: list | tuple = ()
) -> dict[str, Any]:
    from safetensors import safe_open

    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("neumo", "{}"))
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if optimizer is not None and "optim" in meta:
        optimizer.load_state_dict(
            _join_optim({k: v for k, v in tensors.items() if k.startswith("optim.")}, meta["optim"])
        )
    for i, cb in enumerate(callbacks):
        if hasattr(cb, "load_state_tensors"):
            pre = f"cb.{i}."
            cb.load_state_tensors({k[len(pre) :]: v for k, v in tensors.items() if k.startswith(pre)})
    return meta


def checkpoint_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"step-{int(step):08d}.safetensors"


def latest_checkpoint(folder: Path) -> tuple[int, Path] | None:
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_RE.match(p.name))]
    return max(found) if found else None


def prune_checkpoints(folder: Path, keep: int = 2) -> None:
    found = sorted((int(m.group(1)), p) for p in Path(folder).iterdir() if (m := _STEP_RE.match(p.name)))
    for _, p in found[:-keep]:
        p.unlink(missing_ok=True)
