"""JSON Lines in and out: the one reader every JSONL file drp reads goes through, and the one atomic writer its
output files are written with.

Reading: lines are numbered as a text editor numbers them (blank ones counted, so errors point at the right
place), blank lines are skipped, a UTF-8 byte-order mark on the first line is allowed, and a line that is not
UTF-8 or not JSON comes back with its error instead of ending the read: each caller decides whether that is a
one-line error, a failed record, or the torn last line of a killed writer to skip.

Writing: the text goes to a hidden sibling file, is flushed and synced, then renamed over the target, so a kill
or a full disk leaves the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO


@dataclass(frozen=True)
class Line:
    """One non-blank line: its number and its value, or why it has none (then `record` is None)."""

    number: int
    record: Any = None
    error: UnicodeDecodeError | json.JSONDecodeError | None = None


class JsonlError(ValueError):
    """A line of a JSONL file that is not UTF-8 or not JSON, named by its file and line number."""


def read_lines(path: Path | str) -> Iterator[Line]:
    """Each non-blank line of a JSONL file, in order, parsed or with its error (read one line at a time)."""
    with open(path, "rb") as handle:
        for number, data in enumerate(handle, start=1):
            try:
                text = data.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield Line(number, error=exc)
                continue
            if not text.strip():
                continue
            text = text.rstrip("\r\n")  # so that an error at the end of the line has its column on the line
            try:
                yield Line(number, json.loads(text))
            except json.JSONDecodeError as exc:
                yield Line(number, error=exc)
            except RecursionError:  # nested deeper than the parser goes: bad input like any other
                yield Line(number, error=json.JSONDecodeError("nested too deeply", text, 0))


def describe(error: UnicodeDecodeError | json.JSONDecodeError) -> str:
    """A line's error in a few words: `not UTF-8 (byte 3 of the line is 0xff)`, or
    `not valid JSON (Expecting value, column 1)`."""
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 (byte {error.start + 1} of the line is {error.object[error.start]:#04x})"
    return f"not valid JSON ({error.msg}, column {error.colno})"


def read_jsonl(path: Path | str) -> list[Any]:
    """Every record of a JSONL file; the first bad line is a JsonlError naming it (`FILE:LINE: not valid JSON`)."""
    records = []
    for line in read_lines(path):
        if line.error is not None:
            raise JsonlError(f"{path}:{line.number}: {describe(line.error)}")
        records.append(line.record)
    return records


@contextmanager
def atomic_write(path: Path | str, *, errors: str = "strict", mode: int | None = None) -> Iterator[TextIO]:
    """A UTF-8 text handle whose content replaces `path` in one step when the block ends without an error (and
    is thrown away when it raises). `mode` sets the file's permissions; by default they follow the umask, as
    for any new file."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with open(fd, "w", encoding="utf-8", errors=errors) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_jsonl(path: Path | str, records: Iterable[Any]) -> Path:
    """One JSON line per record (non-ASCII kept as is), written atomically."""
    with atomic_write(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return Path(path)
