"""``neumo study list|run|show``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from neumo.cli.common import JsonFlag, RayOpt, RunsDir, SinkOpt, console, emit_json, verdict_style

app = typer.Typer(no_args_is_help=True, help="List and run studies (claims -> experiments -> verdicts).")


@app.command("list")
def list_(runs_dir: Optional[Path] = RunsDir, json_out: bool = JsonFlag) -> None:
    """Table of registered studies with their last verdict under the runs folder."""
    from neumo.studies import all_studies
    from neumo.studies.runner import last_verdicts

    last = last_verdicts(runs_dir)
    rows = [
        {
            "id": sid,
            "instrument": s.instrument,
            "claim": s.claim,
            "citation": s.citation,
            "last_verdict": last.get(sid, {}).get("status"),
        }
        for sid, s in all_studies().items()
    ]
    if json_out:
        emit_json(rows)
        return
    t = Table(title="studies")
    for c in ("id", "instrument", "claim", "last verdict"):
        t.add_column(c, overflow="fold")
    for r in rows:
        lv = r["last_verdict"] or "-"
        t.add_row(r["id"], r["instrument"], r["claim"], f"[{verdict_style(lv)}]{lv}[/]")
    console.print(t)


@app.command("run")
def run(
    study_id: Optional[str] = typer.Argument(None, help="Study id (see 'neumo study list')."),
    full: bool = typer.Option(False, "--full", help="Run the full preset instead of the quick one."),
    seeds: Optional[int] = typer.Option(
        None, "--seeds", help="Number of seeds seed, seed+1, ... (default 3 quick, 5 full)."
    ),
    seed: int = typer.Option(0, "--seed"),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML/TOML config for the study."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override, e.g. train.lr=0.01 (repeatable)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Resume an interrupted run (folder or id)."),
    checkpoint_every: int = typer.Option(0, "--checkpoint-every", help="Checkpoint every N steps (resumable)."),
    force: bool = typer.Option(
        False,
        "--force",
        help="With --resume: take over a run owned by a process on "
        "another host that is gone (a live owner on this host is never taken over).",
    ),
    sink: Optional[List[str]] = SinkOpt,
    ray: Optional[str] = RayOpt,
    runs_dir: Optional[Path] = RunsDir,
    json_out: bool = JsonFlag,
) -> None:
    """Run one study and print its verdict."""
    from neumo.config import load_file, split_kind
    from neumo.errors import NeumoError
    from neumo.studies.runner import run_study

    file_doc = None
    if config is not None:
        kind, file_doc = split_kind(load_file(config), str(config))
        if study_id is None and kind.startswith("study:"):
            study_id = kind.split(":", 1)[1]
        if kind != f"study:{study_id}":
            raise NeumoError(f"config {str(config)!r} is for {kind!r}, not study {study_id!r}")
        # a run's own config.yaml re-runs: its resolved config, and its preset/seeds/seed unless given here
        from neumo.catalog import split_study_run

        file_doc, saved = split_study_run(file_doc, str(config))
        if saved is not None:
            full = full or saved.preset == "full"
            seeds = saved.seeds if seeds is None else seeds
            seed = saved.seed if seed == 0 else seed
            checkpoint_every = checkpoint_every or saved.checkpoint_every
            sink = sink or list(saved.sinks)
    if resume is not None and (full or study_id is not None):
        raise NeumoError("--resume continues a run with its saved study and preset; drop the study id and --full")
    if study_id is None and resume is None:
        raise NeumoError("give a study id (see 'neumo study list') or --resume RUN")
    v = run_study(
        study_id or "",
        preset="full" if full else "quick",
        overrides=set_,
        file_doc=file_doc,
        seeds=seeds,
        seed=seed,
        root=runs_dir,
        resume=resume,
        progress=(not json_out) and sys.stderr.isatty(),
        checkpoint_every=checkpoint_every,
        force=force,
        sinks=tuple(sink or ()),
        ray=ray,
    )
    if json_out:
        emit_json(v.model_dump(mode="json"))
        return
    from rich.markup import escape

    from neumo.cli.lab_cmd import verdict_table
    from neumo.report.verdicts import decision, expected, interval

    console.print(verdict_table([v]))
    console.print(escape(f"{v.status}: {v.reason}"))
    blocked = any(not g.passed for g in v.preconditions)
    for g in v.preconditions:
        console.print(
            f"  gate {g.name}: {g.value if g.value is None else f'{g.value:.3g}'} (worst seed) "
            f"{g.op} {g.threshold:g} -> {'met' if g.passed else 'NOT MET'}"
        )
    for c in v.checks:
        line = (
            f"  {c.name}: {interval(c.model_dump())} {expected(c.model_dump())} -> "
            f"{'not judged' if blocked else decision(c.model_dump())}"
            + (f"; null {c.null_mean:.3g}" if c.null_mean is not None else "")
        )
        console.print(escape(line))
    if v.summary:
        console.print(escape(v.summary))
    console.print(f"run: {v.run_dir}")


@app.command("show")
def show(study_id: str, json_out: bool = JsonFlag) -> None:
    """Claim, citation, presets and config schema of one study."""
    from neumo.studies import get_study
    from neumo.studies.base import Thresholds

    s = get_study(study_id)
    thresholds = s.Config.model_fields["thresholds"].annotation
    assert isinstance(thresholds, type) and issubclass(thresholds, Thresholds)  # a study's thresholds section
    info = {
        "id": s.id,
        "instrument": s.instrument,
        "claim": s.claim,
        "citation": s.citation,
        "presets": s.presets,
        "nulls": s.nulls,
        "replication": s.replication,
        "changed_after_first_look": s.threshold_history,
        "thresholds": thresholds.justifications(),
        "defaults": s.Config().model_dump(mode="json"),
        "doc": (s.__doc__ or "").strip(),
    }
    if json_out:
        emit_json(info)
        return
    import yaml

    console.print(f"[bold]{s.id}[/] ({s.instrument})\n{s.claim}\n[dim]{s.citation}[/]\n")
    console.print(
        yaml.safe_dump(
            {
                "nulls": s.nulls,
                "replication": s.replication,
                "thresholds": info["thresholds"],
                "changed_after_first_look": s.threshold_history or "nothing",
                "presets": s.presets,
                "defaults": info["defaults"],
            },
            sort_keys=False,
            width=76,
        )
    )
