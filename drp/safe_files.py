"""Reading a small file someone else may have made (a policy folder, a template): only a regular file, only up
to a size, never blocking. A FIFO, a device (`/dev/zero`), a folder or a file over the cap is a one-line
UserError naming the file, before anything is read into memory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from drp.errors import UserError


class UnsafeFile(UserError):
    """A file that is not a regular file, is too large, or cannot be read."""


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: Path, what: str) -> os.stat_result:
    """The file's stat (links followed), or UnsafeFile when it is missing or not a regular file."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise UnsafeFile(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFile(f"{what} {path} is {_kind(info.st_mode)}, not a regular file")
    return info


def read_capped(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. Opened without blocking and checked again on
    the open descriptor, so a file swapped for a FIFO or a device after the first check is refused too."""
    check_regular(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise UnsafeFile(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{what} {path} is {_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise UnsafeFile(f"{what} {path} is {info.st_size:,} bytes; at most {limit:,} are read")
        data = handle.read(limit + 1)  # a file that grew after fstat is still read no further
    if len(data) > limit:
        raise UnsafeFile(f"{what} {path} is over {limit:,} bytes; at most {limit:,} are read")
    return data


def read_capped_text(path: Path, limit: int, what: str) -> str:
    data = read_capped(path, limit, what)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsafeFile(f"{what} {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def inside(path: Path, folder: Path) -> bool:
    """Whether `path`, every link followed, lies inside `folder` (links followed too)."""
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a link loop on older Pythons
        return False
    return True
