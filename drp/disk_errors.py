"""Writes the disk refuses: no space left (ENOSPC), over the file-size limit (EFBIG: `ulimit -f`, RLIMIT_FSIZE;
Python ignores SIGXFSZ, so the write fails instead of killing the process), over a quota (EDQUOT), a read-only
file system (EROFS) — and SQLite's versions of them. Whatever command meets one, it ends as one line saying
what to do; what was written before stays (a run's finished traces are committed per batch, and a run
resumes with --resume; an export or a report is built aside and never half replaces the old one)."""

from __future__ import annotations

import errno
import sqlite3

from drp.errors import UserError

_DISK_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EFBIG: "a file grew over the file-size limit",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
}
_SQLITE_IOERR, _SQLITE_FULL = 10, 13
DISK_REFUSED_EXIT = 75  # how a `drp run --workers` worker stopped by the disk tells its parent (EX_TEMPFAIL)

ADVICE = (
    "free space (or raise the file-size limit, `ulimit -f`) and run the command again; what was finished "
    "before is kept (a run goes on with --resume)"
)


class DiskRefused(UserError):
    """A write the disk refused; the message says which and what to do."""


def disk_error(error: BaseException) -> DiskRefused | None:
    """The user's version of an OS or SQLite error that means the disk refused a write; None otherwise."""
    if isinstance(error, OSError) and error.errno in _DISK_ERRNOS:
        where = f" writing {error.filename}" if error.filename else ""
        return DiskRefused(f"{_DISK_ERRNOS[error.errno]}{where}: {ADVICE}")
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if code is not None and code & 0xFF in (_SQLITE_FULL, _SQLITE_IOERR):
            what = (
                "the disk is full"
                if code & 0xFF == _SQLITE_FULL
                else "a write failed (the disk is full, or a file is over the file-size limit)"
            )
            return DiskRefused(f"the run database could not be written: {what} ({error}): {ADVICE}")
    return None
