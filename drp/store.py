"""The run database (one SQLite file per run, written with sqlite-utils), with numbered migrations.

Tables: `runs` (one row per run), `traces` (one row per input record, its status and results),
`steps` (the final attempt's steps per trace), `calls` (every agent call, LLM or deterministic).
A trace's steps, calls and terminal status are written in one transaction, so a killed run leaves
each trace either finished or untouched, and `--resume` redoes exactly the untouched ones.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

TERMINAL = ("accepted", "rejected", "failed")
DB_NAME = "drp.db"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _m001_initial(db: sqlite_utils.Database) -> None:
    db["runs"].create(
        {
            "id": str, "policy": str, "input": str, "teacher_url": str, "teacher_model": str,
            "tokenizer": str, "config": str, "prompt_hashes": str, "created_at": str,
            "updated_at": str, "wall_seconds": float, "sessions": int,
        },
        pk="id",
    )
    db["traces"].create(
        {
            "id": str, "line": int, "question": str, "response": str, "gold_answer": str, "extra": str,
            "status": str, "reason": str, "attempts": int, "original_answer": str, "pruned_answer": str,
            "original_thinking": str, "original_answer_section": str,
            "pruned_thinking": str, "pruned_response": str,
            "thinking_tokens_before": int, "thinking_tokens_after": int,
            "response_tokens_before": int, "response_tokens_after": int,
            "teacher_input_tokens": int, "teacher_output_tokens": int, "teacher_calls": int,
            "seconds": float, "finished_at": str,
        },
        pk="id",
    )
    db["traces"].create_index(["status"])
    db["steps"].create(
        {
            "trace_id": str, "step": int, "attempt": int, "unit_start": int, "unit_end": int,
            "skill": str, "action": str, "merge_group": int, "text": str, "rewritten": str,
        },
        pk=("trace_id", "step"),
        foreign_keys=[("trace_id", "traces", "id")],
    )
    db["calls"].create(
        {
            "id": int, "trace_id": str, "seq": int, "node": str, "attempt": int, "policy": str,
            "prompt_name": str, "prompt_hash": str, "messages": str, "raw_output": str,
            "parsed": str, "error": str, "model": str, "input_tokens": int, "output_tokens": int,
            "latency_ms": float, "started_at": str,
        },
        pk="id",
        foreign_keys=[("trace_id", "traces", "id")],
    )
    db["calls"].create_index(["trace_id", "seq"], unique=True)


MIGRATIONS = [("m001_initial", _m001_initial)]


def open_db(path: Path | str) -> sqlite_utils.Database:
    """Open (creating and migrating as needed) a run database; `path` is the db file or the run folder."""
    path = Path(path)
    if path.is_dir() or path.suffix != ".db":
        path.mkdir(parents=True, exist_ok=True)
        path = path / DB_NAME
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=60000")  # worker processes write to the same run: wait, never fail
    applied = set()
    if "_migrations" in db.table_names():
        applied = {row["name"] for row in db["_migrations"].rows}
    for name, migrate in MIGRATIONS:
        if name not in applied:
            with db.conn:
                migrate(db)
                db["_migrations"].insert({"name": name, "applied_at": now()}, pk="name")
    return db


def loads(value: str | None):
    """JSON columns back to Python (None stays None)."""
    return None if value in (None, "") else json.loads(value)


def dumps(value) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)
