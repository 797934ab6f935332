"""A run killed with SIGKILL is listed as interrupted and resumes without duplicating logged steps."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from neumo.runs import Run, list_runs

STEPS = 400
ARGS = [f"train.steps={STEPS}", "train.eval_every=100", "train.log_every=1", "hidden=[64, 64]"]


def _neumo(*args, root, **kw):
    env = {**os.environ, "NEUMO_RUNS_DIR": str(root), "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "neumo.cli.main", *args], env


def _sets():
    return [x for a in ARGS for x in ("--set", a)]


def _units(run_dir):
    return sorted((run_dir / "units").glob("seed*"))


def test_sigkill_then_resume(tmp_path):
    """Three seeds x (treatment, shuffled labels) = six units; killed inside a unit of a later seed, after
    three units are complete (the seeds once shared one checkpoint folder and a resume lost all but one)."""
    root = tmp_path / "runs"
    cmd, env = _neumo("study", "run", "F-mlp-digits", "--seeds", "3", *_sets(), "--checkpoint-every", "50",
                      "--json", root=root)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    live = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            dirs = [d for d in root.glob("study-*") if (d / "status.json").is_file()]
            done = len(list(dirs[0].glob("units/*/measurement.json"))) if dirs else 0
            if done >= 3:
                live = [u for u in _units(dirs[0]) if not (u / "measurement.json").exists()]
                if live and list((live[0] / "checkpoints").glob("step-*.safetensors")) and \
                        (live[0] / "metrics.jsonl").read_text().count("\n") >= 130:
                    break       # three units complete, the next past at least two checkpoints
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert live, "never saw a unit in progress after a complete one"
    run_dir = live[0].parent.parent
    (run_,) = list_runs(root)
    assert run_.status()["state"] == "interrupted"
    done_before = {u.name: (u / "measurement.json").read_text() for u in _units(run_dir)
                   if (u / "measurement.json").exists()}
    killed = live[0]
    before = Run.open(killed).metrics()
    assert 0 < before[-1]["step"] < STEPS
    ck_at_kill = max(int(p.stem.split("-")[1]) for p in (killed / "checkpoints").glob("step-*.safetensors"))

    # the CLI lists it as interrupted
    cmd, env = _neumo("runs", "list", "--json", root=root)
    listed = json.loads(subprocess.run(cmd, env=env, capture_output=True, check=True).stdout)
    assert listed[0]["state"] == "interrupted"
    # --resume takes the saved config: an override would be silently ignored, so it is refused
    cmd, env = _neumo("study", "run", "--resume", run_dir.name, "--set", "train.lr=1", root=root)
    bad = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "saved config" in bad.stderr

    cmd, env = _neumo("study", "run", "--resume", run_dir.name, "--json", root=root)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    verdict = json.loads(out.stdout)
    assert verdict["seeds"] == [0, 1, 2]
    assert [u.name for u in _units(run_dir)] == [f"seed{k}-{arm}" for k in range(3)
                                                 for arm in ("shuffled_labels", "treatment")]
    assert len(done_before) == 3 and killed.name.startswith(("seed1-", "seed2-"))
    for u in _units(run_dir):
        steps = [r["step"] for r in Run.open(u).metrics()]
        assert steps == list(range(1, STEPS + 1)), f"{u.name}: every step logged exactly once"
    for name, text in done_before.items():       # complete units are kept, not re-run
        assert (run_dir / "units" / name / "measurement.json").read_text() == text
    rows = Run.open(killed).metrics()
    assert rows[:ck_at_kill] == before[:ck_at_kill]   # rows up to the checkpoint are kept as they were
    assert Run.open(run_dir).status()["state"] == "complete"
    study_rows = Run.open(run_dir).metrics()          # one row per unit, none twice after the resume
    assert [r["step"] for r in study_rows] == [1, 2, 3, 4, 5, 6] and all(r["unit_done"] for r in study_rows)
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "already complete" in again.stderr

    # and the resumed run reproduces an uninterrupted run with the same seeds exactly
    cmd, env = _neumo("study", "run", "F-mlp-digits", "--seeds", "3", *_sets(), "--json", root=tmp_path / "ref")
    ref = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)
    for u in _units(run_dir):                        # per seed and arm, the same losses and measurement
        ref_unit = Path(ref["run_dir"]) / "units" / u.name
        assert [r["loss"] for r in Run.open(ref_unit).metrics()] == [r["loss"] for r in Run.open(u).metrics()]
        assert json.loads((ref_unit / "measurement.json").read_text())["values"] == \
            json.loads((u / "measurement.json").read_text())["values"]
    assert ref["measured"] == verdict["measured"] and ref["checks"] == verdict["checks"]


def test_checkpoint_flag_is_refused_where_a_study_cannot_honour_it(tmp_path):
    from neumo.errors import NeumoError
    from neumo.studies import all_studies
    from neumo.studies.runner import run_study

    no_ckpt = [s for s, c in all_studies().items() if not c.supports_checkpoints]
    if not no_ckpt:
        import pytest

        pytest.skip("every registered study checkpoints")
    import pytest

    with pytest.raises(NeumoError, match="does not checkpoint"):
        run_study(no_ckpt[0], checkpoint_every=10, root=tmp_path)
    assert not list(tmp_path.iterdir())          # refused before any run folder was made
    with pytest.raises(NeumoError, match="between 1 and"):
        run_study("F-mlp-digits", seeds=10**9, root=tmp_path)
