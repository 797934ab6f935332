"""A run is a folder: ``config.yaml``, ``metrics.jsonl``, Parquet tables, ``artifacts/``, ``checkpoints/``
and ``status.json`` (always written atomically).

Layout::

    <root>/<name>-<YYYYmmdd-HHMMSS>-<6 hex>/
        config.yaml        resolved config, written once at creation
        status.json        {state, pid, step, final, error, ...}; rewritten atomically
        metrics.jsonl      one JSON object per logged step, flushed per line
        tables/*.parquet   tidy result tables
        artifacts/         figures, reports, snapshots
        checkpoints/       safetensors checkpoints (see neumo.train.checkpoint)

A run whose status says ``running`` but whose process is gone is reported as ``interrupted``; it can be
resumed from its last checkpoint, and :meth:`Run.rewind` drops metric rows logged after that checkpoint
so no step is ever duplicated.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml

from neumo.errors import RunError
from neumo.runs.atomic import atomic_write_json, atomic_write_text, atomic_write_with
from neumo.runs.lock import RunLock, process_alive, process_start
from neumo.runs.sinks import JsonlSink, MetricSink, check_sinks, make_sink

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,200}$")


def default_root() -> Path:
    return Path(os.environ.get("NEUMO_RUNS_DIR", "runs"))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def safe_name(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.\-]+", "-", name).strip("-.") or "run"
    return s[:80]


class Run:
    """Handle on a run folder. Create with :meth:`create`, reopen with :meth:`open`."""

    def __init__(self, path: Path):
        self.dir = Path(path)
        self._jsonl: JsonlSink | None = None
        self._sinks: list[MetricSink] = []
        self._lock: RunLock | None = None

    def lock(self, force: bool = False) -> "Run":
        """Take the run's owner lock (see :mod:`neumo.runs.lock`); released by :meth:`close`."""
        self._lock = RunLock(self.dir).acquire(force=force)
        return self

    # ------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        name: str,
        config: dict[str, Any],
        root: str | Path | None = None,
        kind: str = "run",
        sinks: tuple[str, ...] = (),
        parent: Path | None = None,
    ) -> "Run":
        root = Path(parent) if parent is not None else Path(root) if root is not None else default_root()
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return cls.create_at(root / f"{safe_name(name)}-{stamp}-{secrets.token_hex(3)}", name, config, kind, sinks)

    @classmethod
    def create_at(
        cls, path: Path, name: str, config: dict[str, Any], kind: str = "run", sinks: tuple[str, ...] = ()
    ) -> "Run":
        """Create a run folder at exactly ``path`` (which must not exist), e.g. one seed of a study.

        ``sinks`` (``tensorboard``, ``mlflow``) are checked first, remembered in ``status.json`` and
        re-opened whenever the run logs again (a resume)."""
        sinks = check_sinks(sinks)
        path = Path(path)
        path.mkdir(parents=True, exist_ok=False)
        for sub in ("artifacts", "tables", "checkpoints"):
            (path / sub).mkdir()
        run = cls(path)
        atomic_write_text(path / "config.yaml", yaml.safe_dump(config, sort_keys=False))
        (path / "metrics.jsonl").touch()
        run._write_status(
            {
                "name": name,
                "kind": kind,
                "state": "running",
                "created": _now(),
                "step": 0,
                "final": {},
                "error": None,
                "sinks": list(sinks),
            }
        )
        run._open_sinks(sinks)
        return run

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        p = Path(path)
        if not (p / "status.json").is_file() or not (p / "config.yaml").is_file():
            raise RunError(f"{str(p)!r} is not a neumo run folder (no status.json/config.yaml)")
        return cls(p)

    def _open_sinks(self, sinks: tuple[str, ...] | None = None) -> None:
        if sinks is None:  # re-opened (a resume): the sinks the run was created with
            sinks = tuple(self.sinks)
        self._jsonl = JsonlSink(self.dir / "metrics.jsonl")
        self._sinks = [make_sink(s, self.dir) for s in sinks]

    @property
    def sinks(self) -> list[str]:
        """The metric sinks this run was created with (besides its metrics.jsonl)."""
        try:
            st = json.loads((self.dir / "status.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return []
        got = st.get("sinks", []) if isinstance(st, dict) else []
        return [s for s in got if isinstance(s, str)] if isinstance(got, list) else []

    # ------------------------------------------------------------ properties
    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def config(self) -> dict[str, Any]:
        try:
            doc = yaml.safe_load((self.dir / "config.yaml").read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise RunError(
                f"run {self.id!r} has an unreadable config.yaml ({first}); the run folder is "
                "corrupt: remove it or restore the file"
            ) from None
        if not isinstance(doc, dict):
            raise RunError(f"run {self.id!r} has a config.yaml that is not a mapping; the run folder is corrupt")
        return doc

    def status(self) -> dict[str, Any]:
        try:
            st = json.loads((self.dir / "status.json").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RunError(f"run {self.id!r} has an unreadable status.json: {e}") from None
        if not isinstance(st, dict) or not isinstance(st.get("state", ""), str):
            raise RunError(
                f"run {self.id!r} has a status.json that is not a mapping with a 'state'; the run folder is corrupt"
            )
        if st.get("state") == "running":
            same_host = st.get("host") == socket.gethostname()
            pid = st.get("pid")
            if not isinstance(pid, int) or isinstance(pid, bool):
                st["state"] = "corrupt"
                st["reason"] = f"status.json has pid {pid!r}, not a process id"
            elif same_host and not process_alive(pid, st.get("pid_start")):
                st["state"] = "interrupted"
        return st

    def artifact(self, name: str) -> Path:
        p = self.dir / "artifacts" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def checkpoint_dir(self) -> Path:
        return self.dir / "checkpoints"

    # ------------------------------------------------------------ status
    def _write_status(self, update: dict[str, Any]) -> None:
        path = self.dir / "status.json"
        st = json.loads(path.read_text()) if path.exists() else {}
        st.update(update)
        st.update(
            {
                "pid": os.getpid(),
                "pid_start": process_start(os.getpid()),
                "host": socket.gethostname(),
                "updated": _now(),
            }
        )
        atomic_write_json(path, st)

    def mark_running(self, step: int = 0) -> None:
        if self._jsonl is None:
            self._open_sinks()
        self._write_status({"state": "running", "step": int(step), "error": None})

    def mark_step(self, step: int) -> None:
        self._write_status({"step": int(step)})

    def finish(self, final: dict[str, Any] | None = None) -> None:
        self._write_status({"state": "complete", "final": final or {}, "finished": _now()})
        self.close()

    def fail(self, error: str, state: str = "failed") -> None:
        self._write_status({"state": state, "error": error})
        self.close(state)

    def close(self, state: str = "complete") -> None:
        """Close the metric sinks (an MLflow run is marked with ``state``) and release the lock."""
        if self._jsonl:
            self._jsonl.close()
        for s in self._sinks:
            s.close(state)
        self._jsonl, self._sinks = None, []
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # ------------------------------------------------------------ metrics
    def log(self, step: int, metrics: dict[str, Any]) -> None:
        if self._jsonl is None:
            self._open_sinks()
        assert self._jsonl is not None  # _open_sinks opened it
        self._jsonl.log(step, metrics)
        for s in self._sinks:
            s.log(step, metrics)

    def metrics(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        path = self.dir / "metrics.jsonl"
        if not path.exists():
            return rows
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line from a kill
        return rows

    def rewind(self, step: int) -> None:
        """Keep only metric rows with ``step <= step`` (atomically); used when resuming a checkpoint."""
        self.close()
        keep = [r for r in self.metrics() if int(r.get("step", 0)) <= step]
        atomic_write_text(self.dir / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in keep))

    # ------------------------------------------------------------ tables
    def write_table(self, name: str, df) -> Path:
        """Write a tidy pandas DataFrame as ``tables/<name>.parquet`` (atomically)."""
        path = self.dir / "tables" / f"{safe_name(name)}.parquet"
        atomic_write_with(path, lambda tmp: df.to_parquet(tmp, index=False))
        return path

    def read_table(self, name: str):
        import pandas as pd

        return pd.read_parquet(self.dir / "tables" / f"{safe_name(name)}.parquet")


def find_run(ref: str | Path, root: str | Path | None = None) -> Run:
    """Resolve a run by path or by id under ``root``; ids are validated (no path traversal)."""
    p = Path(ref)
    if p.is_dir() and (p / "status.json").exists():
        return Run.open(p)
    root = Path(root) if root is not None else default_root()
    name = str(ref)
    if not RUN_ID_RE.match(name) or ".." in name:
        raise RunError(f"{name!r} is not a valid run id (letters, digits, '-', '_', '.')")
    cand = root / name
    if cand.is_dir():
        return Run.open(cand)
    matches = sorted(d for d in root.glob(f"{name}*") if (d / "status.json").exists()) if root.is_dir() else []
    if len(matches) == 1:
        return Run.open(matches[0])
    if len(matches) > 1:
        raise RunError(f"run id {name!r} is ambiguous under {str(root)!r}: {len(matches)} runs match")
    raise RunError(f"no run {name!r} under {str(root)!r}; list runs with 'neumo runs list'")


def list_runs(root: str | Path | None = None) -> list[Run]:
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        return []
    runs = [Run(d) for d in root.iterdir() if d.is_dir() and (d / "status.json").exists()]
    return sorted(runs, key=lambda r: (r.dir.stat().st_mtime, r.id))
