"""Temporary folders that a kill cannot leave behind for good.

A scratch folder holds a lock (flock) on a file inside it for as long as its process lives; the kernel drops
the lock when the process dies, however it dies (SIGKILL included). Each new scratch folder of the same kind
first removes every earlier one whose lock is free: what a killed process left goes with the next start.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

LOCK = ".in-use"
_GRACE_S = 60.0  # a folder still without its lock file may be one being made this moment


def _stale(folder: Path) -> bool:
    try:
        fd = os.open(folder / LOCK, os.O_RDWR)
    except FileNotFoundError:
        try:
            return time.time() - folder.stat().st_mtime > _GRACE_S
        except OSError:
            return False
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: its process is alive
    finally:
        os.close(fd)
    return True


def clear_stale(prefix: str, root: Path | None = None) -> list[Path]:
    """Remove the scratch folders `prefix*` under `root` (default: the temporary folder) that this user owns
    and no living process holds; returns them."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    for folder in root.glob(f"{prefix}*"):
        try:
            mine = folder.is_dir() and not folder.is_symlink() and folder.stat().st_uid == os.getuid()
        except OSError:
            continue
        if mine and _stale(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@contextmanager
def scratch_folder(prefix: str, root: Path | None = None):
    """A fresh temporary folder `prefix…`, removed on the way out, and by the next start if a kill stops us."""
    clear_stale(prefix, root)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    fd = os.open(folder / LOCK, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)
