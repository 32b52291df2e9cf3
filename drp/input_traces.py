"""Reading trace records: JSONL files (line by line, tolerant of bad lines), `datasets` folders, hub names.

Every input record becomes a LoadedRecord: either a usable trace or an error that the run stores as a
`failed` row with its reason, so nothing is silently dropped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from drp.errors import UserError

REQUIRED = ("question", "response")


@dataclass
class LoadedRecord:
    id: str
    line: int
    record: dict | None  # id, question, response, gold_answer (str|None), extra (dict)
    error: str | None = None


def parse_field_map(pairs: list[str]) -> dict[str, str]:
    """`--field question=problem` → {"question": "problem"}."""
    mapping = {}
    for pair in pairs:
        ours, _, theirs = pair.partition("=")
        if not theirs:
            raise UserError(f"--field wants OURS=THEIRS, got {pair!r}")
        mapping[ours.strip()] = theirs.strip()
    return mapping


def load(source: str, field_map: dict[str, str] | None = None, split: str = "train") -> Iterator[LoadedRecord]:
    """Records from a JSONL file, a `datasets` directory or a Hugging Face dataset name, ids de-duplicated."""
    field_map = field_map or {}
    seen: dict[str, int] = {}
    for line, raw, error in _raw_records(source, split):
        loaded = _normalise(line, raw, error, field_map)
        if loaded.record is not None and loaded.id in seen:
            first = seen[loaded.id]
            loaded = LoadedRecord(f"{loaded.id}#line{line}", line, None, f"duplicate_id: {loaded.id!r} first seen on line {first}")
        elif loaded.record is not None:
            seen[loaded.id] = line
        yield loaded


def _raw_records(source: str, split: str) -> Iterator[tuple[int, object, str | None]]:
    path = Path(source)
    if path.is_file():
        with path.open("rb") as handle:
            for line, data in enumerate(handle, start=1):
                if not data.strip():
                    continue
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield line, None, f"invalid_utf8: {exc.reason} at byte {exc.start}"
                    continue
                try:
                    yield line, json.loads(text), None
                except json.JSONDecodeError as exc:
                    yield line, None, f"invalid_json: {exc.msg} (column {exc.colno})"
        return
    import datasets

    if path.is_dir():
        dataset = datasets.load_from_disk(str(path))
        if isinstance(dataset, datasets.DatasetDict):
            dataset = dataset[split]
    else:
        dataset = datasets.load_dataset(source, split=split)
    for line, row in enumerate(dataset, start=1):
        yield line, row, None


def _normalise(line: int, raw: object, error: str | None, field_map: dict[str, str]) -> LoadedRecord:
    fallback_id = f"line-{line:06d}"
    if error is not None:
        return LoadedRecord(fallback_id, line, None, error)
    if not isinstance(raw, dict):
        return LoadedRecord(fallback_id, line, None, f"invalid_record: expected a JSON object, got {type(raw).__name__}")

    def field(name: str):
        return raw.get(field_map.get(name, name))

    raw_id = field("id")
    record_id = str(raw_id).strip() if raw_id not in (None, "") else fallback_id
    for name in REQUIRED:
        value = field(name)
        if not isinstance(value, str) or not value.strip():
            problem = "missing" if value is None else "empty" if isinstance(value, str) else f"not text ({type(value).__name__})"
            return LoadedRecord(record_id, line, None, f"missing_field: {field_map.get(name, name)} is {problem}")
    gold = field("gold_answer")
    used = {field_map.get(n, n) for n in ("id", "question", "response", "gold_answer")}
    record = {
        "id": record_id,
        "question": field("question"),
        "response": field("response"),
        "gold_answer": None if gold in (None, "") else str(gold),
        "extra": {k: v for k, v in raw.items() if k not in used},
    }
    return LoadedRecord(record_id, line, record)
