"""``neumo memory tasks|run|sweep|extract``: the memory instrument's face (parse, call, render)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Literal, Optional, cast

import typer
from rich.table import Table

from neumo.cli.common import JsonFlag, RunsDir, SinkOpt, console, emit_json

app = typer.Typer(no_args_is_help=True, help="Memory: procedural tasks, memory sweeps, automaton extraction.")


def task_listing() -> list[dict]:
    from neumo.memory.tasks import task_class, task_names

    out = []
    for name in task_names():
        cls = task_class(name)
        knobs = {k: f.default for k, f in cls.model_fields.items()}
        out.append(
            {"task": name, "family": cls.family, "knobs": knobs, "description": " ".join((cls.__doc__ or "").split())}
        )
    return out


@app.command("tasks")
def tasks(json_out: bool = JsonFlag) -> None:
    """List the tasks with their knobs (and defaults)."""
    rows = task_listing()
    if json_out:
        emit_json(rows)
        return
    t = Table(title="memory tasks")
    for c in ("task", "family", "knobs", "description"):
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(r["task"], r["family"], ", ".join(f"{k}={v}" for k, v in r["knobs"].items()), r["description"])
    console.print(t)


@app.command("run")
def run(
    task: Optional[str] = typer.Argument(None, help="Task name (see 'neumo memory tasks')."),
    model: Optional[str] = typer.Option(
        None,
        "--model",
        "-m",
        help="Registered model (default lstm; rnn, gru, transformer, linear_attention, memory_transformer).",
    ),
    set_: Optional[List[str]] = typer.Option(
        None,
        "--set",
        help="Dotted override: task_knobs.length=16, "
        "model_knobs.hidden_size=32, train.lr=0.01, eval_lengths=[8,32] "
        "(repeatable).",
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", help="A 'kind: memory-run' file or a run's saved config.yaml (re-runs it)."
    ),
    checkpoint_every: Optional[int] = typer.Option(
        None, "--checkpoint-every", min=0, max=100_000_000, help="Checkpoint every N steps (for --resume)."
    ),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue an interrupted run (folder or id)."),
    force: bool = typer.Option(False, "--force", help="With --resume: take over a run owned on another host."),
    sink: Optional[List[str]] = SinkOpt,
    progress: bool = typer.Option(False, "--progress", help="Show a progress bar."),
    runs_dir: Optional[Path] = RunsDir,
    json_out: bool = JsonFlag,
) -> None:
    """Train MODEL on TASK and report accuracy per evaluation length."""
    from neumo.errors import NeumoError
    from neumo.memory.workflow import resolve_run_config, result_summary, resume_run, train_run

    if force and resume is None:
        raise NeumoError("--force only applies with --resume (it takes over a run owned on another host)")
    if resume is not None:
        if task or model or set_ or config or checkpoint_every is not None or sink:
            raise NeumoError(
                "--resume continues a run with its saved config; drop the task, --model, --set, "
                "--config, --checkpoint-every and --sink (or start a new run with them)"
            )
        r, res = resume_run(resume, runs_dir, progress=progress, force=force)
    else:
        saved_ck = 0
        if config is not None:
            from neumo.catalog import document_kind
            from neumo.config import apply_overrides, load_file, validate
            from neumo.memory.train import MemoryRunConfig

            doc = load_file(config)
            kind, body = document_kind(doc, str(config))
            if kind != "memory-run":
                raise NeumoError(
                    f"{config} has kind {kind!r}; 'neumo memory run --config' needs 'kind: memory-run' "
                    "or a memory run's config.yaml"
                )
            for name, given in (("task", task), ("model", model)):
                if given is not None and given != body.get(name, MemoryRunConfig.model_fields[name].default):
                    raise NeumoError(
                        f"{name} {given!r} disagrees with {config}'s {body.get(name)!r}; drop it or "
                        f"override with --set {name}=..."
                    )
            cfg = validate(MemoryRunConfig, apply_overrides(body, set_), str(config))
            saved_ck = int(doc.get("checkpoint_every", 0) or 0) if "memory_run" in doc else 0
            sink = sink or (list(doc.get("sinks") or []) if "memory_run" in doc else [])
        elif task is None:
            raise NeumoError("give a task (see 'neumo memory tasks'), --config FILE or --resume RUN")
        else:
            cfg = resolve_run_config(task, model or "lstm", set_)
        ck = saved_ck if checkpoint_every is None else checkpoint_every
        r, res = train_run(cfg, root=runs_dir, progress=progress, checkpoint_every=ck, sinks=tuple(sink or ()))
    task, model = r.config["memory_run"]["task"], r.config["memory_run"]["model"]
    out = {"run": str(r.dir), **result_summary(res)}
    if json_out:
        emit_json(out)
        return
    t = Table(
        title=f"{task} / {model}: {res.steps} steps, state size {out['state_size']}, {out['n_params']} parameters"
    )
    for c in ("length", "acc", "final_acc", "seq_acc"):
        t.add_column(c)
    for L, m in out["eval"].items():
        t.add_row(str(L), *(f"{m[k]:.3f}" for k in ("acc", "final_acc", "seq_acc")))
    console.print(t)
    console.print(f"run: {r.dir}")


@app.command("sweep")
def sweep(
    config: Path = typer.Argument(..., help="A 'kind: memory-sweep' YAML/TOML file."),
    workers: int = typer.Option(1, "--workers", "-j", min=1, max=256, help="Local worker processes."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Ray cluster address (e.g. auto, ray://host:10001)."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override, e.g. seeds=5 (repeatable)."),
    runs_dir: Optional[Path] = RunsDir,
    json_out: bool = JsonFlag,
) -> None:
    """Run a sweep: one job per (model, grid point, seed); a tidy Parquet table and a curve with 95% bands."""
    from neumo.config import apply_overrides, load_file, split_kind, validate
    from neumo.errors import NeumoError
    from neumo.memory.bench import SweepConfig, expand, run_sweep, summarize
    from neumo.memory.bench.sweep import check_workers, failed_jobs
    from neumo.runs import Run

    kind, body = split_kind(load_file(config), str(config))
    if kind != "memory-sweep":
        raise NeumoError(f"{config} has kind {kind!r}; 'neumo memory sweep' needs 'kind: memory-sweep'")
    cfg = validate(SweepConfig, apply_overrides(body, set_), str(config))
    check_workers(workers, ray)  # before the run folder exists
    jobs = expand(cfg)
    n = len(jobs)
    run = Run.create(
        f"memory-sweep-{cfg.name}",
        {"kind": "memory-sweep", **cfg.model_dump(mode="json")},
        root=runs_dir,
        kind="memory-sweep",
    )
    from tqdm.auto import tqdm

    with tqdm(total=n, disable=json_out, leave=False, desc=cfg.name) as bar:
        try:
            df = run_sweep(cfg, workers=workers, ray_address=ray, run=run, on_done=bar.update, jobs=jobs)
        except BaseException as e:
            run.fail(str(e) or type(e).__name__)
            raise
    summ = summarize(df, cfg.x, ["label"] + [k for k in cfg.grid if k != cfg.x])
    failed = failed_jobs(df)
    run.finish({"jobs": n, "failed_jobs": len(failed)})
    fails = failed[["label", "seed", *cfg.grid, "error"]].to_dict(orient="records")
    if json_out:
        emit_json({"run": str(run.dir), "jobs": n, "failed": fails, "summary": summ.to_dict(orient="records")})
        return
    t = Table(title=f"{cfg.name} ({cfg.curve}): {n} jobs, mean acc and 95% interval")
    for c in summ.columns:
        t.add_column(str(c))
    for row in summ.itertuples(index=False):
        t.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    console.print(t)
    for f in fails:
        console.print(f"[red]failed[/red] {f['label']} seed {f['seed']} { {k: f[k] for k in cfg.grid} }: {f['error']}")
    console.print(f"run: {run.dir}")


@app.command("extract")
def extract(
    run: str = typer.Argument(..., help="A 'neumo memory run' folder or id (recurrent model, finite-state task)."),
    method: str = typer.Option("kmeans", "--method", help="kmeans or grid (PCA + grid)."),
    k: int = typer.Option(8, "--k", min=1, max=1024, help="Clusters for k-means (minimisation merges extras)."),
    bins: int = typer.Option(4, "--bins", min=1, max=64, help="Grid cells per principal component."),
    no_draw: bool = typer.Option(False, "--no-draw", help="Do not draw the automaton."),
    runs_dir: Optional[Path] = RunsDir,
    json_out: bool = JsonFlag,
) -> None:
    """Print the automaton extracted from a trained run's hidden states and compare it with the true one."""
    from neumo.errors import check_choice
    from neumo.memory.workflow import extract_run

    check_choice("method", method, ("kmeans", "grid"))  # so the cast below holds
    out = extract_run(run, runs_dir, method=cast(Literal["kmeans", "grid"], method), k=k, bins=bins, draw=not no_draw)
    if json_out:
        emit_json(out)
        return
    n_sym = len(out["transitions"][0])
    t = Table(
        title=f"extracted automaton ({out['n_states']} states, start {out['start']}; "
        f"true machine {out['true_states']} states)"
    )
    t.add_column("state")
    t.add_column("output")
    for a in range(n_sym):
        t.add_column(f"on {a}")
    for q, row in enumerate(out["transitions"]):
        t.add_row(str(q) + (" (start)" if q == out["start"] else ""), str(out["outputs"][q]), *map(str, row))
    console.print(t)
    eq = "[green]equivalent[/]" if out["equivalent"] else f"[red]differs on {out['counterexample']}[/]"
    console.print(
        f"{eq} to the true machine; state-mapping accuracy {out['state_map_acc']:.3f}, "
        f"held-out agreement {out['heldout_agreement']:.3f}"
    )
    if "figure" in out:
        console.print(f"figure: {out['figure']}")
