"""Reading the accepted traces of a run: its drp.db (preferred) or a pruned.jsonl file."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from drp.paths import run_dir, runs_dir
from drp.store import DB_NAME, loads, open_db


class SourceError(ValueError):
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
class RunSource:
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


def load_run(spec: str) -> RunSource:
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


def _from_db(folder: Path, name: str) -> RunSource:
    db = open_db(folder / DB_NAME)
    meta = next(iter(db["runs"].rows), {}) if "runs" in db.table_names() else {}
    counts = Counter(row["status"] for row in db.query("select status from traces"))
    if not counts:
        raise SourceError(f"run {name!r} is empty: its database {folder / DB_NAME} holds no traces")
    rows = db.query("select * from traces where status = 'accepted' order by line, id")
    traces = [_trace_from_row(row) for row in rows]
    _require_accepted(name, traces, counts)
    return RunSource(
        name=name,
        path=str(folder),
        policy=meta.get("policy"),
        prompt_hashes=loads(meta.get("prompt_hashes")) or {},
        input=meta.get("input"),
        teacher_model=meta.get("teacher_model"),
        tokenizer=meta.get("tokenizer"),
        status_counts=dict(counts),
        traces=traces,
    )


def _trace_from_row(row: dict) -> AcceptedTrace:
    pruned_response = row.get("pruned_response") or ""
    # The pruned response is thinking + "</think>" + answer section; the db keeps no separate pruned answer section.
    before, tag, after = pruned_response.partition("</think>")
    answer_section = after if tag else (row.get("original_answer_section") or "")
    thinking = row.get("pruned_thinking")
    if thinking is None:
        thinking = before if tag else ""
    return AcceptedTrace(
        trace_id=str(row["id"]),
        question=row.get("question") or "",
        thinking=thinking.strip(),
        answer_section=answer_section.strip(),
        answer=row.get("pruned_answer") or row.get("original_answer"),
        gold_answer=row.get("gold_answer"),
        tokens={
            "thinking_before": row.get("thinking_tokens_before"),
            "thinking_after": row.get("thinking_tokens_after"),
            "response_before": row.get("response_tokens_before"),
            "response_after": row.get("response_tokens_after"),
        },
    )


def _from_pruned_jsonl(path: Path, name: str) -> RunSource:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise SourceError(f"run {name!r} has no accepted traces: {path} is empty")
    traces, policies, hashes = [], set(), {}
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise SourceError(f"run {name!r}: {path} line {number} is not JSON ({error})") from None
        policies.add(record.get("policy"))
        hashes.update(record.get("prompt_hashes") or {})
        tokens = record.get("tokens") or {}
        traces.append(
            AcceptedTrace(
                trace_id=str(record["id"]),
                question=record.get("question") or "",
                thinking=(record.get("thinking") or "").strip(),
                answer_section=(record.get("answer_section") or "").strip(),
                answer=record.get("pruned_answer") or record.get("original_answer"),
                gold_answer=record.get("gold_answer"),
                tokens={key: tokens.get(key) for key in
                        ("thinking_before", "thinking_after", "response_before", "response_after")},
            )
        )
    policies.discard(None)
    return RunSource(
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


def _require_accepted(name: str, traces: list[AcceptedTrace], counts: Counter) -> None:
    if traces:
        return
    others = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    raise SourceError(f"run {name!r} has no accepted traces ({others}): nothing to export")
