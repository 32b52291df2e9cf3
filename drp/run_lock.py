"""One process owns a run at a time.

`drp run` takes an exclusive `flock` on `<runs>/.drp/<id>.lock` before it looks at the run, and holds it
until it ends: creating, resuming, overwriting and processing all happen under it. The kernel drops the lock
when the owner dies, however it dies, so there is never a stale lock to clean up; worker processes forked
by `--workers` share the owner's lock. The file also says who holds it (pid, host, command, start), for
the refusal a second process gets. Lock files are never deleted: deleting one while another process
waits on it would let two owners in.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from datetime import datetime, timezone

from drp.errors import UserError
from drp.paths import check_run_id, work_dir


class RunInUse(UserError):
    """Another process owns this run right now."""


class RunLock:
    """The held lock of one run; `release()` (or the process ending) lets the next owner in."""

    def __init__(self, run_id: str, fd: int):
        self.run_id, self._fd = run_id, fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor of the file drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_run(run_id: str) -> RunLock:
    """Own the run `run_id`, or RunInUse naming the process that does."""
    path = work_dir() / f"{check_run_id(run_id)}.lock"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"cannot lock run {run_id!r} at {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = _owner(fd)
        os.close(fd)
        raise RunInUse(f"run {run_id!r} is in use by {owner}; wait for it to end (or stop it), then retry") from None
    except OSError as exc:  # e.g. a file system without locks
        os.close(fd)
        raise UserError(f"cannot lock run {run_id!r} at {path}: {exc.strerror}") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)[:300],
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    return RunLock(run_id, fd)


def _owner(fd: int) -> str:
    """Who holds the lock, from what it wrote in the file (it may not have written yet)."""
    try:
        info = json.loads(os.pread(fd, 65536, 0) or b"{}")
    except ValueError:
        info = {}
    if not info.get("pid"):
        return "another process (starting up)"
    return (f"process {info['pid']} on {info.get('host', '?')}, started {info.get('started_at', '?')} "
            f"({info.get('command', '?')})")


def holder(folder) -> str | None:
    """Who is running the run in `folder` right now (its lock is held), or None. Only looks: creates nothing,
    and takes the lock for no longer than the look (a shared lock, which a live owner's exclusive one refuses)."""
    from pathlib import Path

    folder = Path(folder)
    path = folder.parent / work_dir().name / f"{folder.name}.lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # never locked: no run has ever held it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _owner(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    return None
