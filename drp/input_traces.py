"""Reading trace records: JSONL files (line by line, tolerant of bad lines), `datasets` folders, hub names.

Every input record becomes a LoadedRecord: either a usable trace or an error that the run stores as a
`failed` row with its reason, so nothing is silently dropped."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from drp.errors import UserError
from drp.jsonl import read_lines
from drp.outcomes import (
    DUPLICATE_ID,
    INVALID_ID,
    INVALID_JSON,
    INVALID_RECORD,
    INVALID_TEXT,
    INVALID_UTF8,
    MISSING_FIELD,
    reason,
)
from drp.surrogates import first_surrogate

REQUIRED = ("question", "response")
# A record longer than this (question + response, in characters) ends as too_long before it is split or
# tokenized (drp run --max-record-chars): far above any model's output window (~250k tokens), far below
# what would exhaust memory.
DEFAULT_MAX_RECORD_CHARS = 1_000_000


@dataclass
class LoadedRecord:
    id: str  # the row's key: no other record of the input has it (see `load`)
    line: int
    record: dict | None  # id, question, response, gold_answer (str|None), extra (dict)
    error: str | None = None
    source_id: str | None = None  # the record's own id, as given (None when it has none)


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
    """One LoadedRecord per input record (a JSONL file, a `datasets` folder or a Hugging Face dataset name),
    each with a key no other record has. The first usable record with an id keeps it as its key, and so does
    a bad line whose id no other record has; every other record (a repeated id, no id) gets a key made from its
    id or line number that no record's own id takes, so a bad line never hides a good one and a renamed
    duplicate never lands on a real id.
    The input is read twice: once to learn every usable record's id, once to yield."""
    field_map = field_map or {}
    first_line: dict[str, int] = {}
    for line, raw, error in _raw_records(source, split):
        item = _normalise(line, raw, error, field_map)
        if item.record is not None and item.source_id is not None:
            first_line.setdefault(item.source_id, line)
    taken = set(first_line)
    for line, raw, error in _raw_records(source, split):
        item = _normalise(line, raw, error, field_map)
        own = item.source_id
        if item.record is not None and own is not None and first_line[own] == line:
            key = own
        elif own is not None and own not in taken:
            key = own  # a bad line keeps its own id when no other record has it
        else:
            if item.record is not None and own is not None:
                item.record, item.error = None, reason(DUPLICATE_ID, f"{own!r} first seen on line {first_line[own]}")
            key = unused_key(f"{own}#line{line}" if own is not None else f"line-{line:06d}", taken)
        taken.add(key)
        item.id = key
        if item.record is not None:
            item.record["id"] = key
        yield item


def unused_key(base: str, taken: set[str]) -> str:
    """`base`, or `base~2`, `base~3`, … : the first that is not taken."""
    key, n = base, 1
    while key in taken:
        n += 1
        key = f"{base}~{n}"
    return key


class InputError(UserError):
    """An input that cannot be read at all (no such file, a folder that is not a dataset, an unknown dataset)."""


_FILE_SUFFIXES = (".jsonl", ".json", ".gz", ".txt", ".parquet", ".arrow", ".csv")


def check_source(source: str) -> None:
    """Refuse, before a run is made, an input that is not there: a missing file, a folder that is not a
    `datasets` folder. A name that is no local path is left to the hub (its errors come when it is read)."""
    path = Path(source).expanduser()
    if path.is_file():
        return
    if path.exists() and not path.is_dir():  # a FIFO, a device, a socket: there, but no file to read twice
        from drp.safe_files import check_regular

        check_regular(path, "input")  # raises, saying what it is
    if path.is_symlink() and not path.exists():
        raise InputError(f"input {source} is a link to nothing ({path.readlink()})")
    if path.is_dir():
        if not any((path / marker).is_file() for marker in ("dataset_dict.json", "state.json", "dataset_info.json")):
            raise InputError(
                f"{source} is a folder but not a `datasets` folder (one written by save_to_disk): "
                "pass a JSONL file of traces, or such a folder"
            )
        return
    if looks_local(source):
        raise InputError(
            f"input {source} does not exist (pass a JSONL file of traces, a `datasets` folder "
            "or a Hugging Face dataset name)"
        )


def looks_local(source: str) -> bool:
    """Whether a name that is not on disk was meant as a local path rather than a hub dataset id."""
    return (
        source.startswith(("/", ".", "~"))
        or source.lower().endswith(_FILE_SUFFIXES)
        or source.count("/") > 1
        or "\\" in source
    )


def _raw_records(source: str, split: str) -> Iterator[tuple[int, object, str | None]]:
    check_source(source)
    path = Path(source).expanduser()
    if path.is_file():
        for line in read_lines(path):
            if isinstance(line.error, UnicodeDecodeError):
                yield line.number, None, reason(INVALID_UTF8, f"{line.error.reason} at byte {line.error.start}")
            elif line.error is not None:
                yield line.number, None, reason(INVALID_JSON, f"{line.error.msg} (column {line.error.colno})")
            else:
                yield line.number, line.record, None
        return
    import datasets

    try:
        if path.is_dir():
            dataset = datasets.load_from_disk(str(path))
            if isinstance(dataset, datasets.DatasetDict):
                if split not in dataset:
                    raise InputError(f"{source} has no split {split!r}; its splits: {', '.join(dataset)} (--split)")
                dataset = dataset[split]
        else:
            dataset = datasets.load_dataset(source, split=split)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - offline hub, unknown name or split, damaged folder: one line, not a trace
        text = str(exc).strip().splitlines()
        raise InputError(
            f"cannot read {source} as a dataset: {type(exc).__name__}: {text[0] if text else ''}"
        ) from None
    for line, row in enumerate(dataset, start=1):
        yield line, row, None


def _own_id(value) -> tuple[str | None, str | None]:
    """The record's own id as text, or why it cannot be one: text (stripped) and integers are ids."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, str):
        return value.strip(), None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value), None
    return None, reason(INVALID_ID, f"the id is {type(value).__name__}, not text or an integer")


def _normalise(line: int, raw: object, error: str | None, field_map: dict[str, str]) -> LoadedRecord:
    """The record of one input line, or the reason it cannot be used (its key is settled by `load`)."""
    if error is not None:
        return LoadedRecord("", line, None, error)
    if not isinstance(raw, dict):
        return LoadedRecord("", line, None, reason(INVALID_RECORD, f"expected a JSON object, got {type(raw).__name__}"))
    surrogate = first_surrogate(raw)
    if surrogate is not None:  # a JSON `\udc80` escape: no text at all, and nothing could store or print it
        where, escape = surrogate
        own, _ = _own_id(raw.get(field_map.get("id", "id")))
        own = None if own is None or first_surrogate(own) else own
        return LoadedRecord(
            "",
            line,
            None,
            reason(
                INVALID_TEXT,
                f"{where} holds a lone surrogate ({escape}), which "
                "is not a character (a broken \\u escape in the JSON)",
            ),
            own,
        )

    def field(name: str):
        return raw.get(field_map.get(name, name))

    own, problem = _own_id(field("id"))
    if problem:
        return LoadedRecord("", line, None, problem)
    for name in REQUIRED:
        value = field(name)
        if not isinstance(value, str) or not value.strip():
            problem = (
                "missing"
                if value is None
                else "empty"
                if isinstance(value, str)
                else f"not text ({type(value).__name__})"
            )
            return LoadedRecord("", line, None, reason(MISSING_FIELD, f"{field_map.get(name, name)} is {problem}"), own)
    gold = field("gold_answer")
    if gold is not None and (isinstance(gold, bool) or not isinstance(gold, (str, int, float))):
        return LoadedRecord(
            "",
            line,
            None,
            reason(
                INVALID_RECORD,
                f"{field_map.get('gold_answer', 'gold_answer')} is {type(gold).__name__}, not text or a number",
            ),
            own,
        )
    used = {field_map.get(n, n) for n in ("id", "question", "response", "gold_answer")}
    record = {
        "id": own,
        "question": field("question"),
        "response": field("response"),
        "gold_answer": None if gold in (None, "") else str(gold),
        "extra": {k: v for k, v in raw.items() if k not in used},
    }
    return LoadedRecord("", line, record, None, own)
