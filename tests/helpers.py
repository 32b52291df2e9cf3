"""Small helpers shared by the pruning-graph tests."""

from __future__ import annotations

import json
from pathlib import Path

import sqlite_utils
from typer.testing import CliRunner

from drp.cli import app
from drp.paths import run_dir

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "traces.jsonl"


def drp(*args: str):
    """Invoke the CLI in-process; returns typer's Result (exit_code, output)."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def db_of(run_id: str) -> sqlite_utils.Database:
    return sqlite_utils.Database(run_dir(run_id) / "drp.db")


def traces_of(run_id: str) -> dict[str, dict]:
    return {row["id"]: row for row in db_of(run_id).query("select * from traces")}


def pruned_of(run_id: str) -> list[dict]:
    return [json.loads(line) for line in (run_dir(run_id) / "pruned.jsonl").read_text().splitlines()]


def example_records() -> list[dict]:
    return [json.loads(line) for line in EXAMPLES.read_text().splitlines()]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path
