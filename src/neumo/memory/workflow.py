"""Runs of the memory instrument on disk: train a model on a task into a run folder, load it back, and
extract its automaton. The CLI (``neumo memory run|extract``) calls these."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from neumo.config import apply_overrides, validate
from neumo.errors import NeumoError
from neumo.memory.tasks import task_class, task_rng
from neumo.memory.train import MemoryRunConfig, MemoryResult, train_on_task

WEIGHTS = "model.safetensors"


def resolve_run_config(task: str, model: str, overrides: list[str] | None = None) -> MemoryRunConfig:
    """``--set path=value`` with dotted paths into :class:`MemoryRunConfig`, as every other ``--set``
    (``task_knobs.length=16``, ``model_knobs.hidden_size=32``, ``train.lr=0.01``)."""
    task_class(task)  # an unknown task is named before any override is read
    for item in overrides or []:
        key = item.split("=", 1)[0].strip()
        if "." not in key and key not in MemoryRunConfig.model_fields:
            raise NeumoError(
                f"--set {item}: {key!r} is not a run field; task and model options take their "
                f"section, e.g. --set task_knobs.{key}=... or --set model_knobs.{key}=..."
            )
    # start from the full defaults so that `train.lr=...` keeps the other training defaults
    base = {**MemoryRunConfig.model_construct().model_dump(mode="json"), "task": task, "model": model}
    doc = apply_overrides(base, overrides)
    return validate(MemoryRunConfig, doc, "memory run config")


def train_run(
    cfg: MemoryRunConfig,
    root: str | Path | None = None,
    progress: bool = False,
    checkpoint_every: int = 0,
    sinks: tuple[str, ...] = (),
):
    """Train into a new run folder (config, metrics, ``tables/eval.parquet``, weights); returns (run, result).

    With ``checkpoint_every`` the run checkpoints and :func:`resume_run` continues it after an interruption.
    """
    from neumo.runs import Run

    if checkpoint_every < 0:
        raise NeumoError(f"--checkpoint-every must be >= 0, got {checkpoint_every}")
    doc = {
        "memory_run": cfg.model_dump(mode="json"),
        "checkpoint_every": int(checkpoint_every),
        **({"sinks": list(sinks)} if sinks else {}),
    }
    run = Run.create(f"memory-{cfg.task}-{cfg.model}", doc, root=root, kind="memory", sinks=tuple(sinks)).lock()
    return run, _train_into(run, cfg, progress, int(checkpoint_every), resume=False)


def resume_run(ref: str | Path, root: str | Path | None = None, progress: bool = False, force: bool = False):
    """Continue an interrupted ``neumo memory run`` from its latest checkpoint, with its saved config."""
    from neumo.runs import find_run

    run = find_run(ref, root)
    saved = run.config
    if not isinstance(saved, dict) or not isinstance(saved.get("memory_run"), dict):
        raise NeumoError(f"run {run.id!r} was not made by 'neumo memory run'; it cannot be resumed with it")
    cfg = validate(MemoryRunConfig, saved["memory_run"], f"saved config of {run.id!r}")
    st = run.status()
    if st["state"] == "complete":
        raise NeumoError(f"run {run.id!r} is already complete; nothing to resume")
    if st["state"] == "corrupt":
        raise NeumoError(f"run {run.id!r} is corrupt ({st.get('reason')}); start a new run")
    ck = int(saved.get("checkpoint_every", 0) or 0)
    run.lock(force=force)  # a live owner is refused here
    return run, _train_into(run, cfg, progress, ck, resume=True)


def _train_into(run, cfg: MemoryRunConfig, progress: bool, checkpoint_every: int, resume: bool) -> MemoryResult:
    from safetensors.torch import save_file

    try:
        res = train_on_task(cfg, run=run, progress=progress, checkpoint_every=checkpoint_every, resume=resume)
    except BaseException as e:
        run.fail(str(e) or type(e).__name__)
        raise
    run.write_table("eval", pd.DataFrame(res.rows()))
    save_file({k: v.contiguous() for k, v in res.model.state_dict().items()}, run.artifact(WEIGHTS))
    run.finish(
        {
            "steps": res.steps,
            "state_size": res.model.state_size(max(res.eval)),
            **{f"acc@{L}": m["acc"] for L, m in res.eval.items()},
        }
    )
    return res


def load_run(ref: str | Path, root: str | Path | None = None):
    """(run, config, model with trained weights, task) of a ``neumo memory run`` folder."""
    from safetensors.torch import load_file

    from neumo.memory.tasks import make_task
    from neumo.memory.train import model_for_run
    from neumo.runs import find_run

    run = find_run(ref, root)
    saved = run.config.get("memory_run")
    if saved is None:
        raise NeumoError(f"run {run.id!r} was not made by 'neumo memory run'; pass one of those runs")
    path = run.dir / "artifacts" / WEIGHTS
    if not path.is_file():
        raise NeumoError(f"run {run.id!r} has no trained weights ({WEIGHTS}); it did not finish - rerun it")
    cfg = validate(MemoryRunConfig, saved, f"saved config of {run.id!r}")
    task = make_task(cfg.task, **cfg.task_knobs)
    model = model_for_run(cfg, task)
    model.load_state_dict(load_file(path))
    return run, cfg, model, task


def extract_run(
    ref: str | Path,
    root: str | Path | None = None,
    method: Literal["kmeans", "grid"] = "kmeans",
    k: int = 8,
    bins: int = 4,
    n_strings: int = 256,
    draw: bool = True,
) -> dict[str, Any]:
    """Extract the automaton of a trained recurrent run on a finite-state task and compare it with the truth."""
    from neumo.memory.probes import compare, extract, model_states
    from neumo.memory.tasks.finite_state import MachineTask

    run, cfg, model, task = load_run(ref, root)
    if not isinstance(task, MachineTask) or task.scratchpad:
        raise NeumoError(
            f"automaton extraction needs a finite-state task without scratchpad "
            f"(parity, modular, s5, a5, dfa); run {run.id!r} trained on {cfg.task!r}"
        )
    spec = model.memory_spec()["working"]
    key = "hidden" if "hidden" in spec else spec[0]
    dfa = task.machine()
    L = task.default_length()
    batch = task.sample(n_strings, task_rng(cfg.seed, "probe", "extract"), L)
    h, pred = model_states(model, batch.inputs, key)
    if h.ndim != 3:
        raise NeumoError(f"model {cfg.model!r} has no per-step state vector to cluster; use rnn, gru or lstm")
    ex = extract(h, batch.inputs.numpy(), pred, dfa.n_symbols, method=method, k=k, bins=bins, seed=cfg.seed)
    held = task_rng(cfg.seed, "probe", "held").integers(0, dfa.n_symbols, size=(256, 4 * L))
    c = compare(ex, dfa, batch.meta["state"].numpy(), held)
    out = {
        "run": run.id,
        "method": method,
        "n_states": ex.dfa.n_states,
        "start": ex.dfa.start,
        "transitions": ex.dfa.delta.tolist(),
        "outputs": ex.dfa.output.tolist(),
        "equivalent": c.equivalent,
        "counterexample": c.counterexample,
        "state_map_acc": c.state_map_acc,
        "heldout_agreement": c.heldout_agreement,
        "true_states": c.n_states_true,
        "transition_consistency": ex.transition_consistency,
    }
    if draw:
        fig = draw_automaton(ex.dfa)
        path = run.artifact(f"automaton_{method}.png")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        out["figure"] = str(path)
    return out


def draw_automaton(dfa, title: str = "extracted automaton"):
    """States on a circle (label: id/output), one arrow per (state, symbol) transition."""
    import matplotlib.pyplot as plt

    n = dfa.n_states
    ang = 2 * np.pi * np.arange(n) / max(n, 1)
    xy = np.stack([np.cos(ang), np.sin(ang)], 1)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for q in range(n):
        for a, r in enumerate(dfa.delta[q]):
            if r == q:
                ax.annotate(str(a), xy[q] * 1.28, ha="center", fontsize=8, color="C1")
                continue
            ax.annotate(
                "",
                xy=xy[r],
                xytext=xy[q],
                arrowprops=dict(
                    arrowstyle="-|>", color="gray", shrinkA=16, shrinkB=16, connectionstyle=f"arc3,rad={0.15 + 0.1 * a}"
                ),
            )
            mid = (xy[q] + xy[r]) / 2 + 0.08 * (a + 1) * np.array([xy[r][1] - xy[q][1], xy[q][0] - xy[r][0]])
            ax.annotate(str(a), mid, fontsize=8, color="C1")
    for q in range(n):
        ax.scatter(xy[q][0], xy[q][1], s=900, color="C2" if q == dfa.start else "C0", zorder=3)
        ax.annotate(f"{q}/{dfa.output[q]}", xy[q], ha="center", va="center", color="white", zorder=4)
    ax.set(xlim=(-1.6, 1.6), ylim=(-1.6, 1.6), title=f"{title} (state/output; green = start)")
    ax.axis("off")
    return fig


def result_summary(res: MemoryResult) -> dict[str, Any]:
    return {
        "steps": res.steps,
        "stopped_early": res.stopped_early,
        "state_size": res.model.state_size(max(res.eval)),
        "n_params": res.model.num_parameters(),
        "eval": {int(L): m for L, m in res.eval.items()},
    }
