"""The append-only samples file: one JSON line per sample, flushed as it is drawn; the resume point of a job."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path


def read_records(path: Path) -> Iterator[dict]:
    """Records of a JSONL file written by SampleWriter; a line cut short by a kill is skipped."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of a killed run: its sample is redone
            if isinstance(record, dict):
                yield record


def latest_by_key(records: Iterable[dict], key: Callable[[dict], tuple]) -> dict[tuple, dict]:
    """The last record per key, except that an error never replaces a success."""
    latest: dict[tuple, dict] = {}
    for record in records:
        k = key(record)
        if record.get("error") and k in latest and not latest[k].get("error"):
            continue
        latest[k] = record
    return latest


class SampleWriter:
    """Appends one JSON line per sample and flushes it, so what is on disk is always a valid resume point."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail(path)
        self._handle = open(path, "a", encoding="utf-8")

    @staticmethod
    def _repair_tail(path: Path) -> None:
        # A kill mid-write leaves a last line without its newline: a record cut short, never read (its sample
        # is drawn again). It is cut off, so the file holds whole records only and resumes any number of times.
        if not path.exists() or not path.stat().st_size:
            return
        with open(path, "rb+") as handle:
            handle.seek(-1, 2)
            if handle.read(1) == b"\n":
                return
            end = handle.seek(0, 2)
            start = end
            while start > 0:  # back to the last newline, a block at a time
                step = min(65536, start)
                handle.seek(start - step)
                block = handle.read(step)
                newline = block.rfind(b"\n")
                if newline >= 0:
                    handle.truncate(start - step + newline + 1)
                    return
                start -= step
            handle.truncate(0)

    def write(self, record: dict) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
