"""Benchmark loaders: local JSONL in the layout of ../shared/data, or the usual Hugging Face datasets.

A benchmark is named `gsm8k`, `gsm8k:train` (another split), a hub id such as `openai/gsm8k`, or a path to
a JSONL file. Problem ids are the same whichever source is used, so runs can be paired on them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drp.answers import gsm8k_gold
from drp.errors import UserError
from drp.evals.problems import Benchmark, Problem
from drp.jsonl import describe, read_lines


class BenchmarkError(UserError):
    """Bad benchmark name or data: the message is meant for the user, as is."""


def _plain_gold(value: Any) -> str:
    # AMC23 stores 27.0: the gold is the integer 27.
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    hub_id: str
    hub_config: str | None
    split: str  # the evaluation split; local files are <data_dir>/<name>/<split>.jsonl
    question_fields: tuple[str, ...]  # the first one present is the question
    answer_field: str
    gold: Callable[[Any], str] = _plain_gold
    id_field: str | None = None  # None: ids from the row index (same order locally and on the hub)
    hub_split: str | None = None  # when the hub calls the evaluation split something else

    def local_file(self, data_dir: Path, split: str) -> Path:
        return Path(data_dir) / self.name / f"{split}.jsonl"


KNOWN: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec("gsm8k", "openai/gsm8k", "main", "test", ("question",), "answer", gsm8k_gold),
        BenchmarkSpec("math500", "HuggingFaceH4/MATH-500", None, "test", ("problem",), "answer"),
        BenchmarkSpec(
            "aime24", "HuggingFaceH4/aime_2024", None, "test", ("problem",), "answer", id_field="id", hub_split="train"
        ),
        BenchmarkSpec("amc23", "math-ai/amc23", None, "test", ("question", "problem"), "answer", id_field="id"),
    )
}
BY_HUB_ID = {spec.hub_id.lower(): spec for spec in KNOWN.values()}


def known_names() -> str:
    names = ", ".join(KNOWN)
    hubs = ", ".join(spec.hub_id for spec in KNOWN.values())
    return f"{names} (add :SPLIT for another split), hub ids {hubs}, or a path to a .jsonl file"


@dataclass(frozen=True)
class Fields:
    """Field names of a generic problems file (remappable on the command line)."""

    question: tuple[str, ...] = ("question", "problem")
    answer: tuple[str, ...] = ("gold_answer", "answer")
    id: str | None = "id"


def load_benchmark(
    name: str,
    data_dir: Path | None,
    source: str = "auto",
    limit: int | None = None,
    fields: Fields | None = None,
    hub_repo: str | None = None,
) -> Benchmark:
    """Problems of one benchmark. `source`: auto (local file when present, else the hub), local, or hub."""
    if source not in ("auto", "local", "hub"):
        raise BenchmarkError(f"unknown source {source!r}: use auto, local or hub")
    path = Path(name)
    if name.endswith(".jsonl") or (path.is_file() and name not in KNOWN):
        return _limited(load_jsonl(path, path.stem, fields or Fields()), limit)
    spec, split = _spec_for(name)
    if source == "auto" and "/" in name.partition(":")[0]:
        source = "hub"  # a hub id was asked for by name: do not quietly read a local copy instead
    local = spec.local_file(data_dir, split) if data_dir is not None else None
    if source == "local" or (source == "auto" and local is not None and local.is_file()):
        if local is None:
            raise BenchmarkError(f"{name}: no --data-dir to read {spec.name}/{split}.jsonl from")
        if not local.is_file():
            raise BenchmarkError(f"{name}: data file {local} does not exist")
        records = _read_jsonl(local)
        where = str(local)
    else:
        records, where = _read_hub(spec, split, hub_repo, missing_local=local)
    problems = [_from_spec(spec, split, index, record, at) for index, at, record in records]
    return _limited(
        Benchmark(spec.name if split == spec.split else f"{spec.name}:{split}", where, tuple(problems)), limit
    )


def _spec_for(name: str) -> tuple[BenchmarkSpec, str]:
    base, _, split = name.partition(":")
    spec = KNOWN.get(base.lower()) or BY_HUB_ID.get(base.lower())
    if spec is None:
        raise BenchmarkError(f"unknown benchmark {name!r}; known: {known_names()}")
    return spec, split or spec.split


def _from_spec(spec: BenchmarkSpec, split: str, index: int, record: dict, at: str) -> Problem:
    question = next((record[f] for f in spec.question_fields if record.get(f) not in (None, "")), None)
    if question is None:
        raise BenchmarkError(f"{at}: none of the question fields {list(spec.question_fields)}")
    if record.get(spec.answer_field) in (None, ""):
        raise BenchmarkError(f"{at}: no {spec.answer_field!r} field")
    if spec.id_field and record.get(spec.id_field) not in (None, ""):
        problem_id = _text(record[spec.id_field], spec.id_field, at, numbers=True)
    else:
        problem_id = f"{spec.name}_{index:04d}" if split == spec.split else f"{spec.name}_{split}_{index:04d}"
    name = spec.name if split == spec.split else f"{spec.name}:{split}"
    gold = spec.gold(_text(record[spec.answer_field], spec.answer_field, at, numbers=True, keep_type=True))
    return Problem(name, problem_id, _text(question, "question", at), gold)


def load_jsonl(path: Path, name: str, fields: Fields) -> Benchmark:
    """A generic problems file: question/problem and gold_answer/answer fields (names remappable)."""
    if not path.is_file():
        raise BenchmarkError(f"problems file {path} does not exist")
    problems, seen = [], {}
    for index, at, record in _read_jsonl(path):
        question = _first(record, fields.question)
        if question is None:
            raise BenchmarkError(f"{at}: none of the question fields {list(fields.question)}")
        answer = _first(record, fields.answer)
        answer = None if answer is None else _text(answer, "answer", at, numbers=True, keep_type=True)
        gold = (
            None
            if answer is None
            else (gsm8k_gold(answer) if isinstance(answer, str) and "####" in answer else _plain_gold(answer))
        )
        problem_id = (
            _text(record[fields.id], fields.id, at, numbers=True)
            if fields.id and record.get(fields.id) not in (None, "")
            else f"{name}_{index:04d}"
        )
        if problem_id in seen:
            raise BenchmarkError(f"{at}: repeats the id {problem_id!r} of {seen[problem_id]}")
        seen[problem_id] = at
        extra = {k: v for k, v in record.items() if k not in (*fields.question, *fields.answer, fields.id)}
        problems.append(Problem(name, problem_id, _text(question, "question", at), gold, extra))
    return Benchmark(name, str(path), tuple(problems))


def _first(record: dict, names: Iterable[str]) -> Any:
    return next((record[n] for n in names if record.get(n) not in (None, "")), None)


def _text(value: Any, field: str, at: str, numbers: bool = False, keep_type: bool = False) -> Any:
    """A field's text: a string, or (ids, answers) a number; anything else is an error, never a Python repr."""
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        return value if keep_type else str(value)
    wanted = "a string or a number" if numbers else "a string"
    raise BenchmarkError(f"{at}: {field} must be {wanted}, got {type(value).__name__} {json.dumps(value)[:60]}")


def _read_jsonl(path: Path) -> list[tuple[int, str, dict]]:
    """(problem index, "FILE:LINE", record) per non-blank line. A UTF-8 byte-order mark is allowed;
    line numbers count every line, blank ones included, so errors point at the right place."""
    rows = []
    for line in read_lines(path):
        at = f"{path}:{line.number}"
        if isinstance(line.error, UnicodeDecodeError):
            raise BenchmarkError(f"{at}: {describe(line.error)}; save the file as UTF-8")
        if line.error is not None:
            raise BenchmarkError(f"{at}: {describe(line.error)}")
        if not isinstance(line.record, dict):
            raise BenchmarkError(f"{at}: expected a JSON object, got {type(line.record).__name__}")
        rows.append((len(rows), at, line.record))
    if not rows:
        raise BenchmarkError(f"{path}: no problems in the file")
    return rows


def _read_hub(spec: BenchmarkSpec, split: str, repo: str | None, missing_local: Path | None):
    import datasets

    repo = repo or spec.hub_id
    hub_split = spec.hub_split if (split == spec.split and spec.hub_split) else split
    try:
        rows = datasets.load_dataset(repo, spec.hub_config, split=hub_split)
    except Exception as exc:  # offline, unknown split, ...: one clear message naming both places tried
        local_note = f"no local file {missing_local}; " if missing_local is not None else ""
        raise BenchmarkError(
            f"{spec.name}: {local_note}loading {repo} ({hub_split}) from the hub failed: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    where = f"{repo}:{hub_split}"
    return [(index, f"{where} row {index + 1}", dict(row)) for index, row in enumerate(rows)], where


def _limited(benchmark: Benchmark, limit: int | None) -> Benchmark:
    if limit is None or limit >= len(benchmark.problems):
        return benchmark
    return Benchmark(benchmark.name, benchmark.source, benchmark.problems[:limit])
