"""Run folders appear whole or not at all, and drp deletes only its own.

A new run is built in a private folder under `<runs>/.drp/` (database migrated, inputs ingested, settings
written) and renamed into `<runs>/<id>` only when complete; a kill or an error before that leaves no run,
only a leftover that the next `drp run` of that id removes (under the run's lock, so never one in use).
`--overwrite` swaps the new run in for the old one the same way, and only replaces a folder that is a drp run.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from drp.paths import DB_NAME
from drp.run_place import RunPlace
from drp.store import holds_run_tables

_DB_FILES = {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal"}


def is_run_folder(folder: Path) -> bool:
    """A folder drp made: its drp.db holds drp's tables (or it holds only an empty drp.db, what an early
    kill left behind before runs were built aside)."""
    database = folder / DB_NAME
    if not database.is_file():
        return False
    if database.stat().st_size == 0:
        return {entry.name for entry in folder.iterdir()} <= _DB_FILES
    return holds_run_tables(database)


def is_empty_folder(folder: Path) -> bool:
    return folder.is_dir() and not any(folder.iterdir())


# Between a run id and what a folder of the work corner is for: a character no run id holds (drp.paths), so
# one run's leftovers never match another's (`a+new-…` is never `a.new-q`'s).
SEPARATOR = "+"
_TEMP_SUFFIX = re.compile(r"[a-z0-9_]{8}")  # what tempfile.mkdtemp adds after a prefix


def staging_prefix(run_id: str, purpose: str = "new") -> str:
    """The name start of the folders that build (`new`) or swap out (`old`) the run `run_id`."""
    return f"{run_id}{SEPARATOR}{purpose}-"


def clear_leftovers(place: RunPlace) -> None:
    """Remove what killed creations or swaps of this run left in the work folder (call it holding the lock)."""
    root = place.work
    if not root.is_dir():
        return
    for entry in root.iterdir():
        if entry.is_dir() and not entry.is_symlink() and _leftover_of(entry.name, place.run_id):
            shutil.rmtree(entry, ignore_errors=True)


def _leftover_of(name: str, run_id: str) -> bool:
    for purpose in ("new", "old"):
        if name.startswith(staging_prefix(run_id, purpose)):
            return True
        # Before the separator was `+`: `<id>.new-` and exactly mkdtemp's eight characters, which no other
        # run id's leftover ends with (theirs carry their own `.new-XXXXXXXX` after a longer id).
        legacy = f"{run_id}.{purpose}-"
        if name.startswith(legacy) and _TEMP_SUFFIX.fullmatch(name[len(legacy) :]):
            return True
    return False


@contextmanager
def staging(place: RunPlace):
    """A private folder to build the run at `place` in; removed unless it was published."""
    root = place.work
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=staging_prefix(place.run_id), dir=root))
    folder.chmod(0o777 & ~_umask())  # mkdtemp's folder is private; a run folder gets the usual permissions
    try:
        yield folder
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def publish(staged: Path, place: RunPlace) -> None:
    """Move a complete run into place, replacing the run (or empty folder) there."""
    folder = place.folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if folder.exists() and not is_empty_folder(folder):
        old = Path(tempfile.mkdtemp(prefix=staging_prefix(place.run_id, "old"), dir=place.work))
        os.replace(folder, old)  # the old run steps aside, onto the fresh empty name
    os.replace(staged, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
