"""``neumo lab``: run every study and write the report."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.table import Table

from neumo.cli.common import JsonFlag, RayOpt, RunsDir, SinkOpt, console, emit_json, verdict_style


def verdict_table(verdicts) -> Table:
    """id, verdict, one key number with its interval, time: fits an 80-column terminal."""
    from neumo.report.verdicts import key_number

    t = Table(title="neumo verdicts", show_lines=False, box=None, pad_edge=False)
    t.add_column("study", no_wrap=True, max_width=24)
    t.add_column("verdict", no_wrap=True)
    t.add_column("key check: mean [95% interval]", no_wrap=True, max_width=33)
    t.add_column("time", justify="right", no_wrap=True)
    for v in verdicts:
        v = v if isinstance(v, dict) else v.model_dump(mode="json")
        t.add_row(
            v["study"],
            f"[{verdict_style(v['status'])}]{v['status']}[/]",
            escape(key_number(v, 33)),
            f"{v.get('elapsed_s', 0):.0f}s",
        )
    return t


def lab(
    quick: bool = typer.Option(False, "--quick", help="Run the quick preset of every study."),
    study: Optional[List[str]] = typer.Option(None, "--study", "-s", help="Only these study ids."),
    instrument: Optional[str] = typer.Option(None, "--instrument", help="Only studies of this instrument."),
    seed: int = typer.Option(0, "--seed", help="First seed (seeds are seed, seed+1, ...)."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Seeds per study (default 3 quick, 5 full)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Studies run in parallel (default: 2 or #cores)."),
    config: Optional[Path] = typer.Option(
        None,
        "--config",
        "-c",
        help="A lab document (kind: lab), e.g. a lab run's config.yaml; options given here override it.",
    ),
    sink: Optional[List[str]] = SinkOpt,
    ray: Optional[str] = RayOpt,
    runs_dir: Optional[Path] = RunsDir,
    json_out: bool = JsonFlag,
) -> None:
    """Run every registered study (quick or full preset) and write report.html + report.json."""
    from neumo.studies.lab import run_lab

    if config is not None:
        from neumo.catalog import LabConfig, validate_file
        from neumo.errors import NeumoError

        kind, doc = validate_file(config)
        if kind != "lab":
            raise NeumoError(f"config {str(config)!r} is for {kind!r}, not a lab; use 'neumo study run -c' for it")
        assert isinstance(doc, LabConfig)  # the schema of kind 'lab'
        quick = quick or doc.preset == "quick"
        study = study or (doc.studies or None)
        seed = seed or doc.seed
        seeds = doc.seeds if seeds is None else seeds
        jobs = doc.jobs if jobs is None else jobs
        sink = sink or list(doc.sinks)
        ray = ray or doc.ray

    def on_verdict(v):
        if not json_out:
            console.print(f"[{verdict_style(v.status)}]{v.status:>12}[/]  {v.study}  ({v.elapsed_s:.1f}s)")

    lab_run, verdicts, html_path, json_path = run_lab(
        quick=quick,
        only=study,
        instrument=instrument,
        root=runs_dir,
        seed=seed,
        seeds=seeds,
        jobs=jobs,
        on_verdict=on_verdict,
        sinks=tuple(sink or ()),
        ray=ray,
    )
    if json_out:
        emit_json(
            {
                "run": str(lab_run.dir),
                "report_html": str(html_path),
                "report_json": str(json_path),
                "verdicts": [v.model_dump(mode="json") for v in verdicts],
            }
        )
        return
    console.print(verdict_table(verdicts))
    console.print(f"report: {html_path}\njson:   {json_path}")
