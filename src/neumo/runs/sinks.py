"""Metric sinks behind one small Protocol. The JSONL file in the run folder is always written;
TensorBoard and MLflow are optional, imported lazily and off by default (torchtune's metric_logging pattern).
A run remembers its sinks (``status.json``), so a resumed run logs to the same places.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Protocol

from neumo.errors import MissingDependencyError, NeumoError

SINKS = {
    "tensorboard": ("tensorboard", "tensorboard", "pip install 'neumo[tensorboard]'"),
    "mlflow": ("mlflow", "mlflow", "pip install 'neumo[mlflow]'"),
}
MLFLOW_URI_ENV = "NEUMO_MLFLOW_URI"  # default: file store <runs root>/mlruns (offline)
MLFLOW_EXPERIMENT_ENV = "NEUMO_MLFLOW_EXPERIMENT"


class MetricSink(Protocol):
    def log(self, step: int, metrics: dict[str, Any]) -> None: ...
    def close(self, state: str = "complete") -> None: ...  # the run's final state (complete|failed|interrupted)


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

    def close(self, state: str = "complete") -> None:
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

    def close(self, state: str = "complete") -> None:
        self._w.close()


def _runs_root(run_dir: Path) -> Path:
    """The folder above the outermost run folder (a study's units and a lab's studies are nested runs)."""
    p = Path(run_dir).resolve()
    while True:
        if (p.parent / "status.json").is_file():
            p = p.parent
        elif p.parent.name in ("units", "studies") and (p.parent.parent / "status.json").is_file():
            p = p.parent.parent
        else:
            return p.parent


class MLflowSink:
    """Numeric metrics of a run into an MLflow run (offline file store by default), continued on resume.

    The MLflow run id is kept in ``artifacts/mlflow.json``; a resumed neumo run re-opens that MLflow run.
    Steps a resume rewinds are logged again (MLflow keeps every value per step; the latest is the resumed one).
    """

    def __init__(self, run_dir: Path):
        try:
            from mlflow.entities import Metric
            from mlflow.tracking import MlflowClient
        except ImportError as e:
            raise MissingDependencyError("the MLflow sink needs mlflow: pip install 'neumo[mlflow]'") from e
        self._Metric = Metric
        run_dir = Path(run_dir)
        uri = (
            os.environ.get(MLFLOW_URI_ENV)
            or os.environ.get("MLFLOW_TRACKING_URI")
            or (_runs_root(run_dir) / "mlruns").as_uri()
        )
        if uri.startswith("file:"):  # MLflow 3 keeps the file store behind an opt-in; it is the offline default
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self._client = MlflowClient(tracking_uri=uri)
        state = run_dir / "artifacts" / "mlflow.json"
        saved = json.loads(state.read_text()) if state.is_file() else {}
        if saved.get("tracking_uri") == uri:
            self.run_id = saved["run_id"]
            self._client.update_run(self.run_id, status="RUNNING")
        else:
            name = os.environ.get(MLFLOW_EXPERIMENT_ENV, "neumo")
            exp = self._client.get_experiment_by_name(name)
            exp_id = exp.experiment_id if exp else self._client.create_experiment(name)
            run = self._client.create_run(exp_id, run_name=run_dir.name, tags={"neumo.run_dir": str(run_dir)})
            self.run_id = run.info.run_id
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text(json.dumps({"tracking_uri": uri, "run_id": self.run_id}))
        self.tracking_uri = uri

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        now = int(time.time() * 1000)
        batch = [
            self._Metric(k, float(v), now, int(step))
            for k, v in ((k, _clean(v)) for k, v in metrics.items())
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        if batch:
            self._client.log_batch(self.run_id, metrics=batch)

    def close(self, state: str = "complete") -> None:
        status = {"complete": "FINISHED", "interrupted": "KILLED"}.get(state, "FAILED")
        self._client.set_terminated(self.run_id, status=status)


def check_sinks(sinks) -> tuple[str, ...]:
    """Validate sink names and that their packages are installed, before any run folder exists."""
    out = tuple(dict.fromkeys(sinks or ()))
    for name in out:
        if name not in SINKS:
            raise NeumoError(f"unknown metric sink {name!r}; available: {', '.join(SINKS)}")
        module, package, how = SINKS[name]
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise MissingDependencyError(f"the {name} sink needs the {package!r} package: {how}")
    return out


def make_sink(name: str, run_dir: Path) -> MetricSink:
    if name == "tensorboard":
        return TensorBoardSink(run_dir / "artifacts" / "tensorboard")
    if name == "mlflow":
        return MLflowSink(run_dir)
    raise MissingDependencyError(f"unknown metric sink {name!r}; available: {', '.join(SINKS)}")
