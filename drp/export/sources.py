"""Reading the accepted traces of a run: its drp.db (preferred) or a pruned.jsonl file."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from drp.errors import UserError
from drp.jsonl import describe, read_lines
from drp.paths import DB_NAME, run_dir, runs_dir
from drp.store import loads, open_run

TOKEN_KEYS = ("thinking_before", "thinking_after", "response_before", "response_after")


def token_column(key: str) -> str:
    """A token count's column in the run database: thinking_before → thinking_tokens_before."""
    return key.replace("_", "_tokens_", 1)


class SourceError(UserError):
    """A run that cannot be exported; the message names the run."""


@dataclass
class AcceptedTrace:
    """One accepted, pruned trace with what export needs (no tags around the thinking)."""

    trace_id: str
    question: str
    thinking: str
    answer_section: str
    answer: str | None
    gold_answer: str | None
    tokens: dict[str, int | None] = field(default_factory=dict)


@dataclass
class AcceptedRun:
    """A run's accepted traces plus the facts the dataset card reports about it."""

    name: str
    path: str
    policy: str | None
    prompt_hashes: dict[str, str]
    input: str | None
    teacher_model: str | None
    tokenizer: str | None
    status_counts: dict[str, int]
    traces: list[AcceptedTrace]


def load_accepted_run(spec: str) -> AcceptedRun:
    """A run id, a run folder, or a pruned.jsonl file → its accepted traces."""
    as_path = Path(spec)
    if as_path.is_file():
        return _from_pruned_jsonl(as_path, name=as_path.parent.name or spec)
    folder = run_dir(spec)
    if (folder / DB_NAME).exists():
        return _from_db(folder, name=folder.name)
    if (folder / "pruned.jsonl").exists():
        return _from_pruned_jsonl(folder / "pruned.jsonl", name=folder.name)
    raise SourceError(
        f"run {spec!r} not found: no {DB_NAME} or pruned.jsonl in {folder} "
        f"(runs are looked up in {runs_dir()}; DRP_RUNS_DIR moves it)"
    )


def _from_db(folder: Path, name: str) -> AcceptedRun:
    from drp.run_lock import holder

    running = holder(folder)
    if running is not None:  # its accepted traces so far are not the run's dataset: refuse rather than cut it
        raise SourceError(
            f"run {name!r} is still in progress ({running}): export it once it has ended "
            "(an interrupted run finishes with `drp run … --resume`)"
        )
    store = open_run(folder)
    meta = store.run_row()
    counts = store.status_counts()
    if not counts:
        raise SourceError(f"run {name!r} is empty: its database {folder / DB_NAME} holds no traces")
    traces = [_trace_from_record(record) for record in store.accepted()]
    _require_accepted(name, traces, counts)
    return AcceptedRun(
        name=name,
        path=str(folder),
        policy=meta.get("policy"),
        prompt_hashes=loads(meta.get("prompt_hashes")) or {},
        input=meta.get("input"),
        teacher_model=meta.get("teacher_model"),
        tokenizer=meta.get("tokenizer"),
        status_counts=counts,
        traces=traces,
    )


def _trace_from_record(record: dict) -> AcceptedTrace:
    """A record of pruned.jsonl (or the store's same-shaped one) → what export needs."""
    tokens = record.get("tokens") or {}
    return AcceptedTrace(
        trace_id=str(record["id"]),
        question=record.get("question") or "",
        thinking=(record.get("thinking") or "").strip(),
        answer_section=(record.get("answer_section") or "").strip(),
        answer=record.get("pruned_answer") or record.get("original_answer"),
        gold_answer=None if record.get("gold_answer") is None else str(record["gold_answer"]),
        tokens={key: tokens.get(key) for key in TOKEN_KEYS},
    )


def _from_pruned_jsonl(path: Path, name: str) -> AcceptedRun:
    lines = list(read_lines(path))
    if not lines:
        raise SourceError(f"run {name!r} has no accepted traces: {path} is empty")
    traces, policies, hashes = [], set(), {}
    for line in lines:
        number, record, error = line.number, line.record, line.error
        if isinstance(error, UnicodeDecodeError):
            raise SourceError(f"run {name!r}: {path} line {number} is {describe(error)}")
        if error is not None:
            raise SourceError(f"run {name!r}: {path} line {number} is not JSON ({error})")
        problem = record_problem(record)
        if problem:
            raise SourceError(f"run {name!r}: {path} line {number} is not a pruned trace of drp run: {problem}")
        policies.add(record.get("policy"))
        hashes.update(record.get("prompt_hashes") or {})
        traces.append(_trace_from_record(record))
    policies.discard(None)
    return AcceptedRun(
        name=name,
        path=str(path),
        policy=", ".join(sorted(policies)) or None,
        prompt_hashes=hashes,
        input=None,
        teacher_model=None,
        tokenizer=None,
        status_counts={"accepted": len(traces)},
        traces=traces,
    )


_OPTIONAL_TEXT = ("thinking", "answer_section", "pruned_answer", "original_answer", "policy")


def record_problem(record) -> str | None:
    """What makes a pruned.jsonl record unusable (a file from elsewhere, edited by hand), or None."""
    from drp.surrogates import first_surrogate

    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    trace_id = record.get("id")
    if isinstance(trace_id, bool) or not isinstance(trace_id, (str, int)) or not str(trace_id).strip():
        return "no id (text or an integer)" if trace_id in (None, "") else f"its id is {type(trace_id).__name__}"
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        return "the question is " + (
            "missing"
            if question is None
            else "empty"
            if isinstance(question, str)
            else f"{type(question).__name__}, not text"
        )
    gold = record.get("gold_answer")
    if gold is not None and (isinstance(gold, bool) or not isinstance(gold, (str, int, float))):
        return f"gold_answer is {type(gold).__name__}, not text or a number"
    for key in _OPTIONAL_TEXT:
        if record.get(key) is not None and not isinstance(record[key], str):
            return f"{key} is {type(record[key]).__name__}, not text"
    for key, kind in (("tokens", dict), ("prompt_hashes", dict)):
        if record.get(key) is not None and not isinstance(record[key], kind):
            return f"{key} is {type(record[key]).__name__}, not an object"
    for key in TOKEN_KEYS:
        count = (record.get("tokens") or {}).get(key)
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            return f"tokens.{key} is {count!r}, not a count"
    if any(not isinstance(v, str) for v in (record.get("prompt_hashes") or {}).values()):
        return "prompt_hashes holds values that are not text"
    surrogate = first_surrogate(record)
    if surrogate:
        return f"{surrogate[0]} holds a lone surrogate ({surrogate[1]})"
    return None


def _require_accepted(name: str, traces: list[AcceptedTrace], counts: dict[str, int]) -> None:
    if traces:
        return
    others = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    raise SourceError(f"run {name!r} has no accepted traces ({others}): nothing to export")
