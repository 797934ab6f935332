"""``neumo runs list|show|compare``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.table import Table

from neumo.cli.common import JsonFlag, RunsDir, console, emit_json, fmt

app = typer.Typer(no_args_is_help=True, help="Inspect run folders.")

_STATE_STYLE = {"complete": "green", "running": "cyan", "interrupted": "yellow", "failed": "red"}


@app.command("list")
def list_(runs_dir: Optional[Path] = RunsDir, json_out: bool = JsonFlag) -> None:
    """All runs under the runs folder with their state (running / complete / interrupted / failed)."""
    from neumo.runs import list_runs

    rows = []
    for r in list_runs(runs_dir):
        st = r.status()
        rows.append(
            {
                "id": r.id,
                "name": st.get("name"),
                "kind": st.get("kind"),
                "state": st["state"],
                "step": st.get("step"),
                "created": st.get("created"),
                "path": str(r.dir),
            }
        )
    if json_out:
        emit_json(rows)
        return
    t = Table(title=f"runs ({len(rows)})")
    for c in ("id", "kind", "state", "step", "created"):
        t.add_column(c)
    for row in rows:
        s = _STATE_STYLE.get(row["state"], "white")
        t.add_row(row["id"], str(row["kind"]), f"[{s}]{row['state']}[/]", str(row["step"]), str(row["created"]))
    console.print(t)


@app.command("show")
def show(run_id: str, runs_dir: Optional[Path] = RunsDir, json_out: bool = JsonFlag) -> None:
    """Config, status and final metrics of one run."""
    from neumo.runs import find_run

    r = find_run(run_id, runs_dir)
    metrics = r.metrics()
    info: dict[str, Any] = {
        "id": r.id,
        "path": str(r.dir),
        "status": r.status(),
        "config": r.config,
        "n_metric_rows": len(metrics),
        "last_metrics": metrics[-1] if metrics else {},
        "tables": sorted(p.stem for p in (r.dir / "tables").glob("*.parquet")),
        "artifacts": sorted(str(p.relative_to(r.dir)) for p in (r.dir / "artifacts").rglob("*") if p.is_file()),
    }
    if json_out:
        emit_json(info)
        return
    import yaml

    console.print(f"[bold]{r.id}[/]  {info['status']['state']}  ({r.dir})")
    console.print(
        yaml.safe_dump(
            {
                "status": info["status"],
                "config": info["config"],
                "last_metrics": info["last_metrics"],
                "tables": info["tables"],
                "artifacts": info["artifacts"],
            },
            sort_keys=False,
        )
    )


def final_metrics(run) -> dict:
    st = run.status()
    out = {k: v for k, v in (st.get("final") or {}).items() if isinstance(v, (int, float, str))}
    rows = run.metrics()
    for row in rows:  # the last value of every metric logged
        for k, v in row.items():
            if k != "step" and isinstance(v, (int, float)):
                out[k] = v
    return out


@app.command("compare")
def compare(run_ids: List[str], runs_dir: Optional[Path] = RunsDir, json_out: bool = JsonFlag) -> None:
    """A table of final metrics across runs (one column per run)."""
    from neumo.runs import find_run

    runs = [find_run(r, runs_dir) for r in run_ids]
    finals = {r.id: final_metrics(r) for r in runs}
    keys = sorted({k for f in finals.values() for k in f})
    if json_out:
        emit_json(finals)
        return
    t = Table(title="final metrics")
    t.add_column("metric")
    for r in runs:
        t.add_column(r.id, overflow="fold")
    for k in keys:
        t.add_row(k, *[fmt(finals[r.id].get(k)) for r in runs])
    console.print(t)
