"""Metric sinks behind one small Protocol. The JSONL file in the run folder is always written;
TensorBoard is optional, imported lazily and off by default (torchtune's metric_logging pattern)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Protocol

from neumo.errors import MissingDependencyError


class MetricSink(Protocol):
    def log(self, step: int, metrics: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else (1e308 if v > 0 else -1e308)
    if hasattr(v, "item") and callable(v.item):
        try:
            return _clean(v.item())
        except (ValueError, RuntimeError):
            return str(v)
    return v


class JsonlSink:
    """One JSON object per logged step, flushed per line: a killed process loses nothing it logged."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._f = open(self.path, "a", encoding="utf-8")

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        row = {"step": int(step), **{k: _clean(v) for k, v in metrics.items()}}
        self._f.write(json.dumps(row) + "\n")
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


class TensorBoardSink:
    def __init__(self, logdir: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception as e:  # tensorboard is an optional extra
            raise MissingDependencyError(
                "the TensorBoard sink needs the 'tensorboard' package: pip install 'neumo[tensorboard]'"
            ) from e
        self._w = SummaryWriter(str(logdir))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        for k, v in metrics.items():
            v = _clean(v)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self._w.add_scalar(k, v, step)

    def close(self) -> None:
        self._w.close()


def make_sink(name: str, run_dir: Path) -> MetricSink:
    if name == "tensorboard":
        return TensorBoardSink(run_dir / "artifacts" / "tensorboard")
    raise MissingDependencyError(f"unknown metric sink {name!r}; available: tensorboard")
