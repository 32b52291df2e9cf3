"""The run store: read-only commands never change a run, old runs are read as they are, and a read-write
open migrates them (back-filling what the migrations add) to the same values a new run stores."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pytest
from helpers import EXAMPLES, REPO, drp, pruned_of

from drp.store import open_run


def _downgrade_to_m001(db_file) -> None:
    """Make a run look as if written before every later migration (the columns they add dropped)."""
    conn = sqlite3.connect(db_file)
    with conn:
        conn.execute("alter table traces drop column pruned_answer_section")
        conn.execute("alter table calls drop column llm")
        conn.execute("drop index traces_line")
        for table, column in (
            ("traces", "source_id"),
            ("traces", "policy_hash"),
            ("calls", "policy_hash"),
            ("runs", "policy_hash"),
            ("runs", "policy_history"),
            ("runs", "input_lines"),
        ):
            conn.execute(f"alter table {table} drop column {column}")
        conn.execute("drop table sessions")
        conn.execute("alter table calls drop column usage")
        for table, column in (
            ("calls", "temperature"),
            ("calls", "max_tokens"),
            ("steps", "echo"),
            ("traces", "checks"),
        ):
            conn.execute(f"alter table {table} drop column {column}")
        conn.execute("alter table calls drop column endpoint")
        conn.execute("alter table calls drop column endpoint_errors")
        for table in ("batch_jobs", "batch_requests", "batch_results"):
            conn.execute(f"drop table {table}")
        conn.execute("drop index calls_reuse_key")
        for table, column in (
            ("calls", "reuse_key"),
            ("calls", "reused_run"),
            ("calls", "reused_trace"),
            ("calls", "reused_seq"),
            ("traces", "reused_calls"),
            ("traces", "reused_input_tokens"),
            ("traces", "reused_output_tokens"),
        ):
            conn.execute(f"alter table {table} drop column {column}")
        conn.execute("delete from _migrations where name != 'm001_initial'")
    conn.execute("vacuum")
    conn.close()  # the last connection: SQLite folds the write-ahead log into the file


def _added_columns(folder) -> tuple[dict, dict]:
    """What the later migrations store: each trace's pruned answer section, each call's llm flag."""
    conn = sqlite3.connect(folder / "drp.db")  # closed at once: a lingering connection would checkpoint later
    sections = dict(conn.execute("select id, pruned_answer_section from traces"))
    llm = {(t, seq): bool(flag) for t, seq, flag in conn.execute("select trace_id, seq, llm from calls")}
    conn.close()
    return sections, llm


def _digest(folder) -> str:
    return hashlib.sha256((folder / "drp.db").read_bytes()).hexdigest()


def test_read_only_commands_read_an_old_run_without_migrating_it(hermetic_runs, tmp_path):
    assert drp("run", EXAMPLES, "--policy", "rules", "--run-id", "old").exit_code == 0
    folder = hermetic_runs / "old"
    stored, llm = _added_columns(folder)
    assert any(stored.values())
    _downgrade_to_m001(folder / "drp.db")
    before = _digest(folder)

    accepted = next(trace_id for trace_id, section in stored.items() if section)
    for args in (
        ("stats", "old", "--json"),
        ("logs", "list", "old"),
        ("logs", "show", "old", accepted),
        ("diff", "old", accepted),
        ("report", "old", "--out", tmp_path / "r.html"),
        ("export", "old", "--out", tmp_path / "sft"),
    ):
        result = drp(*args)
        assert result.exit_code == 0, (args, result.output)
        assert _digest(folder) == before, f"{args[0]} changed the run's database"

    # The answer sections computed for the old run are the ones a new run stores in its column.
    shown = json.loads(drp("logs", "show", "old", accepted, "--json").output)
    assert shown["trace"]["pruned_answer_section"] == stored[accepted]
    assert {(accepted, c["seq"]): c["llm"] for c in shown["calls"]} == {
        k: v for k, v in llm.items() if k[0] == accepted
    }
    exported = {
        json.loads(line)["trace_id"]: json.loads(line)["answer_section"]
        for line in (tmp_path / "sft" / "train.jsonl").read_text().splitlines()
    }
    assert exported == {trace_id: stored[trace_id] for trace_id in exported}
    conn = sqlite3.connect(folder / "drp.db")
    assert [r[0] for r in conn.execute("select name from _migrations")] == ["m001_initial"]
    conn.close()

    # Opened for writing (as `drp run --resume` does), the run is migrated and back-filled.
    open_run(folder, write=True).close()
    assert _added_columns(folder) == (stored, llm)
    assert [r["answer_section"] for r in pruned_of("old")] == [stored[r["id"]] for r in pruned_of("old")]


def test_a_read_only_store_refuses_to_write(hermetic_runs):
    assert drp("run", EXAMPLES, "--policy", "rules", "--run-id", "ro").exit_code == 0
    store = open_run(hermetic_runs / "ro")
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store.db.execute("update traces set status = 'pending'")
    assert store.status_counts() == open_run(hermetic_runs / "ro", write=True).status_counts()


def test_calls_say_whether_they_used_the_teacher(hermetic_runs):
    """The llm flag comes from the agent that made the call, and teacher_calls counts exactly those."""
    assert drp("run", EXAMPLES, "--policy", "rules", "--run-id", "flags").exit_code == 0
    store = open_run(hermetic_runs / "flags")
    for trace in store.traces():
        calls = store.calls(trace["id"])
        assert calls and not any(call["llm"] for call in calls)
        assert trace["teacher_calls"] == 0


def test_an_old_run_resumes_without_adding_a_row(hermetic_runs):
    """A run from before m004 (no policy hash, no count of its input lines) resumes under the same policy, its
    input lines matched by line number, every line still one row."""
    assert drp("run", EXAMPLES, "--policy", "rules", "--run-id", "old", "--limit", "3", "--quiet").exit_code == 0
    folder = hermetic_runs / "old"
    _downgrade_to_m001(folder / "drp.db")
    config = json.loads((folder / "config.json").read_text())
    for key in ("policy_hash", "policy_history"):
        config.pop(key)
    (folder / "config.json").write_text(json.dumps(config))

    assert drp("run", EXAMPLES, "--run-id", "old", "--resume", "--quiet").exit_code == 0
    store = open_run(folder)
    rows = store.traces(("id", "line", "status", "policy_hash"))
    assert len(rows) == 8 and sorted(r["line"] for r in rows) == list(range(1, 9))
    assert all(r["status"] != "pending" for r in rows)
    assert store.run_row()["input_lines"] == 8
    assert [r["policy_hash"] is None for r in rows] == [True] * 3 + [False] * 5  # kept as made


_SQL = re.compile(r"\b(select\b.*\bfrom|insert\s+into|delete\s+from|update\s+\[?\w+\]?\s+set|pragma)\b", re.I | re.S)


def _sql_outside_the_store(path: Path) -> list[str]:
    """SQL text, and sqlite3 connections, in one module: `file:line` of each."""
    tree = ast.parse(path.read_text())
    prose = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}  # docstrings: never run
    hits = []
    for node in ast.walk(tree):
        text = isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
        sql = text and _SQL.search(node.value)
        connects = (
            isinstance(node, ast.Attribute) and node.attr == "connect" and getattr(node.value, "id", "") == "sqlite3"
        )
        if sql or connects:
            hits.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return hits


def test_only_the_store_reads_or_writes_a_run_database():
    """drp's modules and the benchmarks read runs through drp.store's API (or `drp stats --json`): the schema has
    one owner, and its migrations and legacy columns are read the same way everywhere."""
    files = [path for folder in ("drp", "benchmarks") for path in (REPO / folder).rglob("*.py")]
    found = [hit for path in files if path != REPO / "drp" / "store.py" for hit in _sql_outside_the_store(path)]
    assert found == []
