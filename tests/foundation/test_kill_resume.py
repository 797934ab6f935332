"""A run killed with SIGKILL is listed as interrupted and resumes without duplicating logged steps."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from neumo.runs import Run, list_runs

ARGS = ["train.steps=600", "train.eval_every=100", "train.log_every=1", "hidden=[64, 64]"]


def _neumo(*args, root, **kw):
    env = {**os.environ, "NEUMO_RUNS_DIR": str(root), "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "neumo.cli.main", *args], env


def _sets():
    return [x for a in ARGS for x in ("--set", a)]


def test_sigkill_then_resume(tmp_path):
    root = tmp_path / "runs"
    cmd, env = _neumo("study", "run", "F-mlp-digits", *_sets(), "--checkpoint-every", "50", "--json", root=root)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        run_dir = None
        while time.monotonic() < deadline:
            dirs = [d for d in root.glob("study-*") if (d / "status.json").is_file()]
            if dirs:
                run_dir = dirs[0]
                ckpts = list((run_dir / "checkpoints").glob("step-*.safetensors"))
                rows = (run_dir / "metrics.jsonl").read_text().count("\n")
                if ckpts and rows >= 130:  # past at least two checkpoints, mid-way between others
                    break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert run_dir is not None
    (run_,) = list_runs(root)
    assert run_.status()["state"] == "interrupted"
    before = Run.open(run_dir).metrics()
    assert 0 < before[-1]["step"] < 600
    ck_at_kill = max(int(p.stem.split("-")[1]) for p in (run_dir / "checkpoints").glob("step-*.safetensors"))

    # the CLI lists it as interrupted
    cmd, env = _neumo("runs", "list", "--json", root=root)
    listed = json.loads(subprocess.run(cmd, env=env, capture_output=True, check=True).stdout)
    assert listed[0]["state"] == "interrupted"

    cmd, env = _neumo("study", "run", "--resume", run_dir.name, "--json", root=root)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    verdict = json.loads(out.stdout)
    rows = Run.open(run_dir).metrics()
    steps = [r["step"] for r in rows]
    assert steps == list(range(1, 601)), "every step logged exactly once"
    assert Run.open(run_dir).status()["state"] == "complete"
    # rows logged before the kill, up to the checkpoint, are kept as they were
    assert rows[:ck_at_kill] == before[:ck_at_kill]
    # and the resumed run reproduces an uninterrupted run with the same seed exactly
    cmd, env = _neumo("study", "run", "F-mlp-digits", *_sets(), "--json", root=tmp_path / "ref")
    ref = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)
    ref_rows = Run.open(Path(ref["run_dir"])).metrics()
    assert [r["loss"] for r in ref_rows] == [r["loss"] for r in rows]
    assert ref["measured"] == verdict["measured"]
