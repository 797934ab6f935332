"""The run owner lock: atomic create, refusal of a live writer, takeover of a dead one."""
import json
import os
import socket
import subprocess
import sys

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
