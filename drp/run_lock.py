"""One process owns a run at a time.

`drp run` takes an exclusive `flock` on `<runs>/.drp/<id>.lock` (drp.run_place) before it looks at the run, and
holds it until it ends: creating, resuming, overwriting and processing all happen under it. The kernel drops the lock
when the owner dies, however it dies, so a lock left behind by a killed owner is never in the way; worker
processes forked by `--workers` share the owner's lock. The file says who holds it (pid, host, command with
any URL credentials masked, start), for the refusal a second process gets, and only its owner may read it
(mode 0600). The owner removes the file when it ends, still holding the lock; a process that locked the file
in the meantime finds it no longer at its path and starts again on a new one, so there is never a second owner.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

from drp.errors import UserError
from drp.redaction import redact_command
from drp.run_place import RunPlace


class RunInUse(UserError):
    """Another process owns this run right now."""


class RunLock:
    """The held lock of one run; `release()` (or the process ending) lets the next owner in."""

    def __init__(self, run_id: str, fd: int, path: Path):
        self.run_id, self._fd, self._path, self._owner = run_id, fd, path, os.getpid()

    def release(self) -> None:
        if self._fd is not None:
            if os.getpid() == self._owner:  # not a forked worker: the run's owner ends
                try:
                    self._path.unlink()  # while still locked: see the module's docstring
                except OSError:
                    pass
            os.close(self._fd)  # closing the last descriptor of the file drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_run(place: RunPlace) -> RunLock:
    """Own the run at `place`, or RunInUse naming the process that does."""
    run_id, path = place.run_id, place.lock_path
    while True:
        fd = _locked(run_id, path)
        if _is_current(fd, path):
            break
        os.close(fd)  # its owner removed it once done: lock the file now at the path
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": redact_command(" ".join(sys.argv))[:300],
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    return RunLock(run_id, fd, path)


def _locked(run_id: str, path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)  # a file left by an older drp may be readable by all
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
    return fd


def _is_current(fd: int, path: Path) -> bool:
    """Whether the locked file is still the one at `path` (its owner may have removed it meanwhile)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (found.st_dev, found.st_ino) == (held.st_dev, held.st_ino)


def _owner(fd: int) -> str:
    """Who holds the lock, from what it wrote in the file (it may not have written yet)."""
    try:
        info = json.loads(os.pread(fd, 65536, 0) or b"{}")
    except ValueError:
        info = {}
    if not isinstance(info, dict) or not info.get("pid"):
        return "another process (starting up)"
    # masked again: a file written by an older drp may hold the command line as typed
    return redact_command(
        f"process {info['pid']} on {info.get('host', '?')}, started {info.get('started_at', '?')} "
        f"({info.get('command', '?')})"
    )


def holder(folder) -> str | None:
    """Who is running the run in `folder` right now (its lock is held), or None. Only looks: creates nothing,
    and takes the lock for no longer than the look (a shared lock, which a live owner's exclusive one refuses)."""
    path = RunPlace.of_folder(folder).lock_path
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
