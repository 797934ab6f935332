"""An owner lock for a run folder: one writer at a time.

``RunLock(dir).acquire()`` creates ``dir/owner.lock`` atomically (``O_CREAT | O_EXCL``) holding the
owner's pid, host and process start time. A lock whose owner is dead on this host (or whose pid was
reused) is stale and taken over; a live owner, or an owner on another host (whose liveness cannot be
checked), is refused with one line; ``force=True`` takes over an owner on another host (the user says it
is gone), never a live owner on this one. ``release()`` removes it if we still own it.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from neumo.errors import NeumoError

LOCK_NAME = "owner.lock"


def process_start(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_alive(pid: int, start: str | None) -> bool:
    """Whether ``pid`` runs on this host and is the process that started at ``start`` (not a reused pid)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not (start is not None and process_start(pid) not in (None, start))


class RunLockError(NeumoError):
    """Another live writer owns the run folder."""


class RunLock:
    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False

    def owner(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def _create(self) -> bool:
        me = {"pid": os.getpid(), "host": socket.gethostname(), "start": process_start(os.getpid())}
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        self.held = True
        return True

    def acquire(self, force: bool = False) -> "RunLock":
        if self.held or self._create():
            return self
        own = self.owner() or {}
        pid, host = int(own.get("pid", -1) or -1), own.get("host")
        name = self.path.parent.name
        if host not in (None, socket.gethostname()) and not force:
            raise RunLockError(
                f"run {name!r} is locked by pid {pid} on host {host!r}; its liveness cannot be "
                "checked from here; pass --force if that process is gone"
            )
        mine = pid == os.getpid() and host == socket.gethostname()  # an earlier handle in this process
        elsewhere = host not in (None, socket.gethostname())  # only reached with force
        stale = elsewhere or mine or host is None or not process_alive(pid, own.get("start"))
        if not stale:
            raise RunLockError(
                f"run {name!r} is owned by a live process (pid {pid} on {host}); "
                "wait for it or stop it (--force cannot take over a live owner)"
            )
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        if not self._create():  # someone else took it over between our check and our create
            raise RunLockError(f"run {name!r} was taken over by another process just now; try again")
        return self

    def release(self) -> None:
        if not self.held:
            return
        own = self.owner() or {}
        if own.get("pid") == os.getpid() and own.get("host") == socket.gethostname():
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
        self.held = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
