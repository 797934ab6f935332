"""Shared pieces of the CLI: the console, JSON output, option types."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

RunsDir = typer.Option(
    None, "--runs-dir", envvar="NEUMO_RUNS_DIR", help="Root folder of runs (default ./runs; env NEUMO_RUNS_DIR)."
)
JsonFlag = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")
SinkOpt = typer.Option(
    None,
    "--sink",
    help="Also log metrics to tensorboard or mlflow (repeatable; MLflow: "
    "file store <runs root>/mlruns unless $NEUMO_MLFLOW_URI).",
)
RayOpt = typer.Option(
    None,
    "--ray",
    help="Run on a Ray cluster: an address (auto, ray://host:10001) or "
    "'local' to start one here (pip install 'neumo\\[ray]').",
)


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def fmt(x: Any) -> str:
    """A table cell: floats to 4 significant digits, missing values as '-'."""
    if x is None:
        return "-"
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def verdict_style(status: str) -> str:
    return {"holds": "green", "fails": "red", "inconclusive": "yellow", "error": "magenta"}.get(status, "white")


def root_or_default(runs_dir: Optional[Path]) -> Path:
    from neumo.runs import default_root

    return Path(runs_dir) if runs_dir else default_root()
