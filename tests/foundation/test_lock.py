"""The run owner lock: atomic create, refusal of a live writer, takeover of a dead one."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from neumo.runs.lock import LOCK_NAME, RunLock, RunLockError


def _plant(tmp_path, pid, host=None, start=None):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                                  "start": start}))


def test_acquire_writes_owner_and_release_removes(tmp_path):
    lk = RunLock(tmp_path).acquire()
    own = json.loads((tmp_path / LOCK_NAME).read_text())
    assert own["pid"] == os.getpid() and own["host"] == socket.gethostname()
    lk.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_live_owner_is_refused(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _plant(tmp_path, p.pid)
        with pytest.raises(RunLockError, match=r"owned by a live process \(pid \d+"):
            RunLock(tmp_path).acquire()
    finally:
        p.kill()
        p.wait()


def test_dead_owner_is_taken_over(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    _plant(tmp_path, p.pid)
    lk = RunLock(tmp_path).acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    lk.release()


def test_reused_pid_is_stale(tmp_path):
    _plant(tmp_path, os.getppid(), start="not-its-start-time")
    RunLock(tmp_path).acquire().release()


def test_other_host_is_refused_unless_forced(tmp_path):
    _plant(tmp_path, 1, host="some-other-host")
    with pytest.raises(RunLockError, match="on host 'some-other-host'.*--force"):
        RunLock(tmp_path).acquire()
    RunLock(tmp_path).acquire(force=True).release()


def test_second_live_resume_is_refused_by_the_runner(tmp_path):
    from neumo.runs.run import Run
    run = Run.create("x", {"a": 1}, root=tmp_path)
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _plant(run.dir, p.pid)
        with pytest.raises(RunLockError, match="live process"):
            Run.open(run.dir).lock()
    finally:
        p.kill()
        p.wait()
    Run.open(run.dir).lock().close()
    assert not (run.dir / LOCK_NAME).exists()


def test_force_never_takes_over_a_live_owner_on_this_host(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _plant(tmp_path, p.pid)
        with pytest.raises(RunLockError, match="cannot take over a live owner"):
            RunLock(tmp_path).acquire(force=True)
    finally:
        p.kill()
        p.wait()


def test_resume_of_a_run_owned_on_another_host_needs_force(tmp_path):
    from neumo.errors import NeumoError
    from neumo.studies.runner import run_study

    v = run_study("F-mlp-digits", overrides=["train.steps=10", "train.eval_every=5"], seeds=1, root=tmp_path)
    run_dir = Path(v.run_dir)
    status = {"state": "running", "pid": 1, "host": "some-other-host", "pid_start": None}
    (run_dir / "status.json").write_text(json.dumps(status))
    _plant(run_dir, 1, host="some-other-host")
    with pytest.raises(NeumoError, match="some-other-host.*--force"):
        run_study("", resume=str(run_dir), root=tmp_path)
    with pytest.raises(NeumoError, match="only applies with --resume"):
        run_study("F-mlp-digits", force=True, root=tmp_path)
    again = run_study("", resume=str(run_dir), root=tmp_path, force=True)
    assert again.checks == v.checks and json.loads((run_dir / "status.json").read_text())["state"] == "complete"
