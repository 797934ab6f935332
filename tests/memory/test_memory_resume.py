"""`neumo memory run` killed with SIGKILL resumes to the uninterrupted result; its config.yaml re-runs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


from neumo.runs import Run, list_runs

STEPS = 1500
SETS = ["task_knobs.length=6", "model_knobs.hidden_size=16", f"train.steps={STEPS}", "train.log_every=1",
        "train.eval_every=100", "eval_lengths=[6,12]", "eval_size=64"]


def _cmd(*args, root):
    env = {**os.environ, "NEUMO_RUNS_DIR": str(root), "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "neumo.cli.main", "memory", *args], env


def _sets():
    return [x for s in SETS for x in ("--set", s)]


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    root = tmp_path / "runs"
    cmd, env = _cmd("run", "parity", "--model", "gru", *_sets(), "--checkpoint-every", "100", "--json", root=root)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run_dir = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            dirs = list(root.glob("memory-*"))
            if dirs and len(list((dirs[0] / "checkpoints").glob("step-*.safetensors"))) >= 2 and \
                    (dirs[0] / "metrics.jsonl").read_text().count("\n") >= 250:
                run_dir = dirs[0]
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert run_dir is not None, "never saw two checkpoints"
    (r,) = list_runs(root)
    assert r.status()["state"] == "interrupted"
    before = Run.open(run_dir).metrics()
    assert 200 <= before[-1]["step"] < STEPS

    bad = subprocess.run(_cmd("run", "--resume", run_dir.name, "--set", "train.lr=1", root=root)[0],
                         env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "saved config" in bad.stderr
    out = subprocess.run(_cmd("run", "--resume", run_dir.name, "--json", root=root)[0], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    resumed = json.loads(out.stdout)
    rows = Run.open(run_dir).metrics()
    assert [x["step"] for x in rows] == list(range(1, STEPS + 1))        # every step logged exactly once
    assert Run.open(run_dir).status()["state"] == "complete"
    again = subprocess.run(_cmd("run", "--resume", run_dir.name, root=root)[0], env=env, capture_output=True,
                           text=True)
    assert again.returncode == 2 and "already complete" in again.stderr

    ref_cmd, _ = _cmd("run", "parity", "--model", "gru", *_sets(), "--json", root=tmp_path / "ref")
    ref = json.loads(subprocess.run(ref_cmd, env=env, capture_output=True, text=True, check=True).stdout)
    ref_rows = Run.open(Path(ref["run"])).metrics()
    assert [x["loss"] for x in ref_rows] == [x["loss"] for x in rows]
    assert ref["eval"] == resumed["eval"] and ref["steps"] == resumed["steps"]



def test_saved_config_reruns_to_the_same_result(tmp_path, cli):
    sets = [x for s in ["task_knobs.length=4", "model_knobs.hidden_size=4", "train.steps=30", "train.eval_every=10",
                        "eval_size=16"] for x in ("--set", s)]
    code, out, err = cli(["memory", "run", "parity", "--model", "gru", *sets, "--runs-dir", str(tmp_path / "a"),
                           "--json"])
    assert code == 0, err
    first = json.loads(out)
    saved = Path(first["run"]) / "config.yaml"
    code, _, err = cli(["config", "validate", str(saved)])
    assert code == 0, err
    code, out, err = cli(["memory", "run", "--config", str(saved), "--runs-dir", str(tmp_path / "b"), "--json"])
    assert code == 0, err
    assert json.loads(out)["eval"] == first["eval"]
    code, _, err = cli(["memory", "run", "mqar", "--config", str(saved), "--runs-dir", str(tmp_path / "c")])
    assert code == 2 and "disagrees" in err and not (tmp_path / "c").exists()


def test_resume_after_an_early_stop_does_not_train_on(tmp_path):
    """The stop rule's state is rebuilt from the checkpoint's evaluations: a run that had already reached its
    target (killed before it finished writing) resumes to the same result without training further."""
    from neumo.memory.train import MemoryRunConfig, train_on_task

    cfg = MemoryRunConfig(task="parity", model="gru", task_knobs={"length": 4}, model_knobs={"hidden_size": 8},
                          train={"steps": 400, "batch_size": 32, "lr": 0.03, "eval_every": 20, "log_every": 1},
                          target_acc=1.0, eval_size=32)
    run = Run.create("early", {}, root=tmp_path)
    first = train_on_task(cfg, run=run, checkpoint_every=20)
    assert first.stopped_early and first.steps < 400
    rows = Run.open(run.dir).metrics()
    again = train_on_task(cfg, run=Run.open(run.dir), checkpoint_every=20, resume=True)
    assert again.stopped_early and again.steps == first.steps and again.eval == first.eval
    assert Run.open(run.dir).metrics() == rows
