"""The run database: the one module that reads or writes a run's `drp.db` (SQLite, via sqlite-utils).

Tables: `runs` (one row per run), `traces` (one row per input line, its status and results),
`steps` (the final attempt's steps per trace), `calls` (every agent call, LLM or deterministic).
A trace's steps, calls and terminal status are written in one transaction, so a killed run leaves
each trace either finished or untouched, and `--resume` redoes exactly the untouched ones.

`open_run(folder, write=True)` creates and migrates (numbered migrations, each in one transaction);
`open_run(folder)` opens with SQLite read-only, so inspecting a run never changes it (on read-only storage
too), and a run written before a migration is read as it is: what a later migration adds is computed on the
fly. A folder whose run was never completely created is refused in one line. Everything returned is plain data.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from drp.errors import UserError
from drp.input_traces import LoadedRecord, unused_key
from drp.layout import answer_section_after
from drp.outcomes import ACCEPTED, FAILED, PENDING, TEACHER_ERROR, TERMINAL, is_kind
from drp.paths import DB_NAME
from drp.plain_sqlite_utils import sqlite_utils
from drp.redaction import scrub_secrets
from drp.surrogates import without_surrogates

# A teacher token count beyond this (or negative, or not whole) is no count: stored before usage was checked
# (drp/teacher/bodies.py), it reads as missing, and sums over a run can never overflow.
MAX_TOKENS = 10**9
_TEACHER_TOKEN_COLUMNS = ("teacher_input_tokens", "teacher_output_tokens", "input_tokens", "output_tokens")


class RunNotFound(UserError):
    """No run database where one was asked for."""


class IncompleteRun(UserError):
    """A run folder whose creation never finished (left by a kill, before runs were built aside)."""


class DamagedRun(UserError):
    """A run database that SQLite cannot read (truncated, overwritten, not a database)."""


_opened: dict[Path, None] = {}  # run databases this process opened: the damaged one among them is named
_connected: dict[Path, int] = {}  # run databases this process has connections to now, and how many

# SQLite's primary result codes for a damaged file (an extended code carries one of them in its low byte).
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def damaged_database(error: sqlite3.DatabaseError) -> DamagedRun | None:
    """The user's version of an SQLite error that means a damaged file; None for any other database error."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None or code & 0xFF not in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return None
    damaged = [file for file in _opened if _fails_quick_check(file)] or list(_opened)
    files = ", ".join(str(file) for file in damaged) or "a run database"
    return DamagedRun(
        f"{files}: the run database is damaged ({error}); restore it from a copy, "
        "or start the run again with --overwrite"
    )


def _fails_quick_check(file: Path) -> bool:
    """Whether SQLite finds this file damaged (a file it cannot look at now, locked or gone, is not counted)."""
    if not file.is_file():
        return False
    try:
        return _peek(file, "PRAGMA quick_check(1)")[0][0] != "ok"
    except sqlite3.DatabaseError as error:
        code = getattr(error, "sqlite_errorcode", None)
        return code is not None and code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)


def _peek(file: Path, sql: str) -> list[tuple]:
    """One query's rows from a database opened read-only for it alone, and closed."""
    connection = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def check_intact(file: Path) -> None:
    """Refuse, before any query, a file that is not an SQLite database or is shorter than its header says."""
    if _connected.get(file):
        # Not while this process has the file open: reading the header opens and closes the file, and closing
        # any descriptor of a file drops every POSIX lock the process holds on it, those of its SQLite
        # connections included. Without them, another process that opens the run rebuilds the write-ahead
        # log's index and sees nothing committed since (a reader, or another worker of the run).
        return
    size = file.stat().st_size
    if size == 0:
        return  # created but never written: SQLite reads it as an empty database
    with open(file, "rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise DamagedRun(
            f"{file} is not an SQLite database (damaged or overwritten); restore it from a copy, "
            "or start the run again with --overwrite"
        )
    wal = file.with_name(file.name + "-wal")
    if wal.is_file() and wal.stat().st_size > 0:
        return  # pages may still sit in the write-ahead log (a checkpoint cut short): SQLite recovers them
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    header_is_current = header[24:28] == header[92:96]  # the page count is valid only then (SQLite's file format)
    if header_is_current and size < pages * page_size:
        raise DamagedRun(
            f"{file} is truncated: {size} bytes where its header says {pages * page_size}; "
            "restore it from a copy, or start the run again with --overwrite"
        )


def check_readable(file: Path) -> None:
    """Refuse a database SQLite finds damaged when it reads its schema (DamagedRun, naming it)."""
    try:
        _peek(file, "select name from sqlite_master")
    except sqlite3.DatabaseError as error:
        damaged = damaged_database(error)
        if damaged is not None:
            raise damaged from None


def holds_run_tables(file: Path) -> bool:
    """Whether an SQLite file holds a drp run's tables (read-only: another's run or a read-only mount is only
    looked at); False for a file SQLite cannot read."""
    try:
        tables = {name for (name,) in _peek(file, "select name from sqlite_master where type = 'table'")}
    except sqlite3.Error:
        return False
    return "runs" in tables or "_migrations" in tables


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def loads(value: str | None):
    """JSON columns back to Python (None stays None)."""
    return None if value in (None, "") else json.loads(value)


def dumps(value) -> str | None:
    return None if value is None else without_surrogates(json.dumps(value, ensure_ascii=False, default=str))


def _cell(value):
    """A value as SQLite stores it: containers as JSON text (as sqlite-utils stores them), text without lone
    surrogates (a teacher's reply may carry a `\\udc80` escape; SQLite cannot hold it), the rest as is."""
    if isinstance(value, str):
        return without_surrogates(value)
    return dumps(value) if isinstance(value, (dict, list, tuple)) else value


# ---------------------------------------------------------------- schema


def _m001_initial(db: sqlite_utils.Database) -> None:
    db["runs"].create(
        {
            "id": str,
            "policy": str,
            "input": str,
            "teacher_url": str,
            "teacher_model": str,
            "tokenizer": str,
            "config": str,
            "prompt_hashes": str,
            "created_at": str,
            "updated_at": str,
            "wall_seconds": float,
            "sessions": int,
        },
        pk="id",
    )
    db["traces"].create(
        {
            "id": str,
            "line": int,
            "question": str,
            "response": str,
            "gold_answer": str,
            "extra": str,
            "status": str,
            "reason": str,
            "attempts": int,
            "original_answer": str,
            "pruned_answer": str,
            "original_thinking": str,
            "original_answer_section": str,
            "pruned_thinking": str,
            "pruned_response": str,
            "thinking_tokens_before": int,
            "thinking_tokens_after": int,
            "response_tokens_before": int,
            "response_tokens_after": int,
            "teacher_input_tokens": int,
            "teacher_output_tokens": int,
            "teacher_calls": int,
            "seconds": float,
            "finished_at": str,
        },
        pk="id",
    )
    db["traces"].create_index(["status"])
    db["steps"].create(
        {
            "trace_id": str,
            "step": int,
            "attempt": int,
            "unit_start": int,
            "unit_end": int,
            "skill": str,
            "action": str,
            "merge_group": int,
            "text": str,
            "rewritten": str,
        },
        pk=("trace_id", "step"),
        foreign_keys=[("trace_id", "traces", "id")],
    )
    db["calls"].create(
        {
            "id": int,
            "trace_id": str,
            "seq": int,
            "node": str,
            "attempt": int,
            "policy": str,
            "prompt_name": str,
            "prompt_hash": str,
            "messages": str,
            "raw_output": str,
            "parsed": str,
            "error": str,
            "model": str,
            "input_tokens": int,
            "output_tokens": int,
            "latency_ms": float,
            "started_at": str,
        },
        pk="id",
        foreign_keys=[("trace_id", "traces", "id")],
    )
    db["calls"].create_index(["trace_id", "seq"], unique=True)


def _m002_pruned_answer_section(db: sqlite_utils.Database) -> None:
    """The pruned answer section in its own column (it was only inside `pruned_response`)."""
    db["traces"].add_column("pruned_answer_section", str)
    rows = db.query("select id, pruned_thinking, pruned_response from traces where pruned_response is not null")
    for row in list(rows):
        section = answer_section_after(row["pruned_thinking"], row["pruned_response"])
        db.execute("update traces set pruned_answer_section = ? where id = ?", [section, row["id"]])


# Before m003 a call's model name told deterministic calls apart: these two names were never LLMs.
_PRE_M003_DETERMINISTIC = ("rules", "deterministic")


def _m003_call_llm(db: sqlite_utils.Database) -> None:
    """Whether each call used the teacher LLM, in its own column."""
    db["calls"].add_column("llm", int)
    marks = ", ".join("?" for _ in _PRE_M003_DETERMINISTIC)
    db.execute(f"update calls set llm = model not in ({marks})", _PRE_M003_DETERMINISTIC)


def _m004_line_identity_and_policy_hashes(db: sqlite_utils.Database) -> None:
    """One row per input line (its own id kept beside the row's unique id), and the policy hash each run,
    trace and call was made with (a resumed run may have been resumed under a changed policy)."""
    db["traces"].add_column("source_id", str)
    db["traces"].add_column("policy_hash", str)
    db["traces"].create_index(["line"], unique=True, index_name="traces_line")
    db["calls"].add_column("policy_hash", str)
    db["runs"].add_column("policy_hash", str)
    db["runs"].add_column("policy_history", str)
    db["runs"].add_column("input_lines", int)  # set once every input line has its row


def _m005_sessions(db: sqlite_utils.Database) -> None:
    """One row per `drp run` session, its time kept up to date per finished trace, so a session that was
    killed still counts (runs.wall_seconds only grows when a session ends)."""
    db["sessions"].create(
        {"id": int, "started_at": str, "seconds": float, "traces": int, "ended": int},
        pk="id",
    )


def _m006_call_usage(db: sqlite_utils.Database) -> None:
    """Where a teacher call's token counts come from: "reported" by the server, "counted" with the teacher's
    tokenizer, or "missing" (the counts are NULL, never 0). Calls stored before it all took the server's usage."""
    db["calls"].add_column("usage", str)
    db.execute("update calls set usage = 'reported' where llm and (error is null or error not like 'teacher_error:%')")


def _m007_call_endpoint(db: sqlite_utils.Database) -> None:
    """Which endpoint answered each teacher call (credentials masked), and the tries that failed before it."""
    db["calls"].add_column("endpoint", str)
    db["calls"].add_column("endpoint_errors", str)


def _m008_batch_jobs(db: sqlite_utils.Database) -> None:
    """Batch mode: the jobs a run submitted, which job each request went out in, and the results that came back,
    so a killed run resumes the same jobs and never pays for a request twice."""
    db["batch_jobs"].create(
        {
            "id": str,
            "batch_id": str,
            "input_file_id": str,
            "status": str,
            "round": int,
            "requests": int,
            "output_file_id": str,
            "error_file_id": str,
            "detail": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
    )
    db["batch_requests"].create(
        {"custom_id": str, "job_id": str, "trace_id": str, "node": str, "attempt": int},
        pk="custom_id",
    )
    db["batch_requests"].create_index(["job_id"])
    db["batch_results"].create({"custom_id": str, "job_id": str, "status_code": int, "body": str}, pk="custom_id")


def _m009_call_settings_echo_checks(db: sqlite_utils.Database) -> None:
    """Per-call sampling settings (a retry must differ from the first try), the echoed text of re-typing
    policies next to the original span it maps to, and each trace's final check results."""
    db["calls"].add_column("temperature", float)
    db["calls"].add_column("max_tokens", int)
    db["steps"].add_column("echo", str)
    db["traces"].add_column("checks", str)


def _m010_reuse(db: sqlite_utils.Database) -> None:
    """Teacher replies reused across runs (drp/reuse.py): each reusable call's content key, where a reused reply
    came from (run, trace, call), and per trace the reused calls and their tokens, apart from what the run spent."""
    db["calls"].add_column("reuse_key", str)
    db["calls"].add_column("reused_run", str)
    db["calls"].add_column("reused_trace", str)
    db["calls"].add_column("reused_seq", int)
    db["calls"].create_index(["reuse_key"], index_name="calls_reuse_key")
    db["traces"].add_column("reused_calls", int)
    db["traces"].add_column("reused_input_tokens", int)
    db["traces"].add_column("reused_output_tokens", int)


MIGRATIONS = [
    ("m001_initial", _m001_initial),
    ("m002_pruned_answer_section", _m002_pruned_answer_section),
    ("m003_call_llm", _m003_call_llm),
    ("m004_line_identity_and_policy_hashes", _m004_line_identity_and_policy_hashes),
    ("m005_sessions", _m005_sessions),
    ("m006_call_usage", _m006_call_usage),
    ("m007_call_endpoint", _m007_call_endpoint),
    ("m008_batch_jobs", _m008_batch_jobs),
    ("m009_call_settings_echo_checks", _m009_call_settings_echo_checks),
    ("m010_reuse", _m010_reuse),
]


def _tokens(column: str) -> str:
    """SQL for a teacher token column, NULL where its value is no count."""
    return f"(case when typeof([{column}]) = 'integer' and [{column}] between 0 and {MAX_TOKENS} then [{column}] end)"


def _sane_tokens(row: dict) -> dict:
    """The row with teacher token counts out of range read as missing (None)."""
    for column in _TEACHER_TOKEN_COLUMNS:
        value = row.get(column)
        if value is not None and not (isinstance(value, int) and 0 <= value <= MAX_TOKENS):
            row[column] = None
    return row


def _scrubbed_tries(tries: list[dict] | None) -> list[dict] | None:
    """A call's failed tries with their errors' secrets masked."""
    if not tries:
        return None
    return [
        {**entry, "error": scrub_secrets(entry.get("error"))} if isinstance(entry, dict) else entry for entry in tries
    ]


def _legacy_trace_columns(row: dict) -> dict:
    """What later migrations add to a trace row, computed for a run read before them (read-only)."""
    if "pruned_answer_section" not in row:
        row["pruned_answer_section"] = answer_section_after(row.get("pruned_thinking"), row.get("pruned_response"))
    row.setdefault("source_id", None)
    row.setdefault("policy_hash", None)
    row.setdefault("checks", None)
    for column in ("reused_calls", "reused_input_tokens", "reused_output_tokens"):
        row.setdefault(column, None)
    return row


def _legacy_call_columns(row: dict) -> dict:
    if "llm" not in row:
        row["llm"] = row.get("model") not in _PRE_M003_DETERMINISTIC
    row["llm"] = bool(row["llm"])
    if "usage" not in row:
        row["usage"] = "reported" if row["llm"] and not is_kind(row.get("error"), TEACHER_ERROR) else None
    row.setdefault("endpoint", None)
    row["endpoint_errors"] = json_or_text(row.get("endpoint_errors"))
    row.setdefault("temperature", None)
    row.setdefault("max_tokens", None)
    for column in ("reuse_key", "reused_run", "reused_trace", "reused_seq"):
        row.setdefault(column, None)
    return row


# ---------------------------------------------------------------- opening


def db_path(path: Path | str) -> Path:
    """The database file of a run folder (or the file itself)."""
    path = Path(path)
    return path if path.suffix == ".db" and not path.is_dir() else path / DB_NAME


def open_run(path: Path | str, write: bool = False) -> RunStore:
    """A run's database. `write`: create and migrate it as needed; else read-only, and only a complete run
    (RunNotFound when there is none, IncompleteRun when its creation never finished)."""
    file = db_path(path)
    if file.is_file():
        check_intact(file)
    _opened[file] = None
    if write:
        file.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite_utils.Database(file)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        store = RunStore(db, file.parent, True)
    else:
        if not file.is_file():
            raise RunNotFound(f"no run database at {file}")
        conn, copy = _connect_read_only(file)
        store = RunStore(sqlite_utils.Database(conn), file.parent, False, copy)
    store.db.execute("PRAGMA busy_timeout=60000")  # worker processes write to the same run: wait, never fail
    if write:
        store._migrate()
    else:
        store._check_complete()
    return store


def _connect_read_only(file: Path) -> tuple[sqlite3.Connection, Path | None]:
    """SQLite read-only, on a writable or a read-only folder (a read-only mount, another user's run).

    A WAL database needs its `-shm` file: where it cannot be created, a database without a `-wal` file is
    complete on its own and opens as immutable; one with a `-wal` file (a killed run) is read from a private
    copy, so what the log holds is not lost. Returns the connection and the copy's folder, if any."""
    attempts = [(file, "mode=ro")]
    if not Path(f"{file}-wal").exists():
        attempts.append((file, "mode=ro&immutable=1"))
    for target, flags in attempts:
        conn = sqlite3.connect(f"{target.resolve().as_uri()}?{flags}", uri=True)
        try:
            conn.execute("select count(*) from sqlite_master").fetchone()
            return conn, None
        except sqlite3.OperationalError:
            conn.close()
        except sqlite3.DatabaseError as exc:  # not SQLite at all (truncated, overwritten), or damaged inside
            conn.close()
            raise damaged_database(exc) or RunNotFound(f"{file} is not a readable run database ({exc})") from None
    copy = Path(tempfile.mkdtemp(prefix="drp-read-"))
    for suffix in ("", "-wal"):
        if Path(f"{file}{suffix}").exists():
            shutil.copyfile(f"{file}{suffix}", copy / f"{file.name}{suffix}")
    conn = sqlite3.connect(f"{(copy / file.name).as_uri()}?mode=ro", uri=True)
    return conn, copy


class RunStore:
    """One run's database. Readers get dicts and lists; writers hand in dicts keyed by column name."""

    def __init__(self, db: sqlite_utils.Database, folder: Path, writable: bool, copy: Path | None = None):
        self.db, self.folder, self.writable = db, folder, writable
        self._file = db_path(folder)
        _connected[self._file] = _connected.get(self._file, 0) + 1
        self._columns: dict[str, set[str]] = {}  # the schema, looked up once
        if copy is not None:  # a private copy of a read-only WAL database: removed at close, or at exit at the latest
            self._remove_copy = weakref.finalize(self, shutil.rmtree, copy, ignore_errors=True)

    def close(self) -> None:
        if self._file in _connected and not getattr(self, "_closed", False):
            self._closed = True
            _connected[self._file] -= 1
        self.db.close()
        if hasattr(self, "_remove_copy"):
            self._remove_copy()

    def _migrate(self) -> None:
        applied = set()
        if "_migrations" in self.db.table_names():
            applied = {row["name"] for row in self.db["_migrations"].rows}
        for name, migrate in MIGRATIONS:
            if name not in applied:
                with self.db.atomic():  # BEGIN … COMMIT around the DDL too: a kill leaves all of it or none
                    migrate(self.db)
                    self.db["_migrations"].insert({"name": name, "applied_at": now()}, pk="name")
        self._columns.clear()

    def _check_complete(self) -> None:
        """A run has its tables and its row (written last when a run is created), or, damaged, at least its
        config.json and traces: else its creation was interrupted, and nothing here can be shown as a run."""
        try:
            tables = set(self.db.table_names())
            complete = {"runs", "traces"} <= tables and (
                self.db["runs"].count > 0 or ((self.folder / "config.json").is_file() and self.db["traces"].count > 0)
            )
        except sqlite3.DatabaseError as exc:
            self.close()
            raise damaged_database(exc) or RunNotFound(
                f"{self.folder / DB_NAME} is not a readable run database ({exc})"
            ) from None
        if not complete:
            self.close()
            raise IncompleteRun(
                f"{self.folder} holds no complete run: its creation was interrupted. "
                "Start it again with `drp run ... --overwrite`"
            )

    def columns(self, table: str) -> set[str]:
        """The table's columns; empty when this database lacks the table (older or damaged runs)."""
        if table not in self._columns:
            known = table in self.db.table_names()
            self._columns[table] = {c.name for c in self.db[table].columns} if known else set()
        return self._columns[table]

    def _select(self, table: str, wanted: Iterable[str]) -> str:
        """A SELECT list of the wanted columns, NULL for the ones this database lacks."""
        have = self.columns(table)
        return ", ".join(f"[{c}]" if c in have else f"NULL AS [{c}]" for c in wanted)

    def _rows(self, sql: str, params=()) -> list[dict]:
        return [dict(row) for row in self.db.query(sql, params)]

    # ------------------------------------------------------------ the runner's writes

    def save_run(self, run_id: str, row: dict) -> None:
        """Insert or update the run's row (a resumed run keeps its creation time and its sessions)."""
        row = {**row, "updated_at": now()}
        if self.db["runs"].count_where("id = ?", [run_id]):
            self.db["runs"].update(run_id, row)
        else:
            self.db["runs"].insert({**row, "id": run_id, "created_at": now(), "wall_seconds": 0.0, "sessions": 0})

    def start_session(self, run_id: str) -> None:
        """A `drp run` session begins: counted now, timed as its traces finish (see save_result)."""
        with self.db.conn:
            self.db["sessions"].insert({"started_at": now(), "seconds": 0.0, "traces": 0, "ended": 0})
            self.db.execute(
                "update runs set sessions = coalesce(sessions, 0) + 1, updated_at = ? where id = ?", [now(), run_id]
            )

    def end_session(self, run_id: str, seconds: float) -> None:
        """The session ends: its measured time moves into the run's wall time."""
        with self.db.conn:
            self.db.execute(
                "update sessions set seconds = ?, ended = 1 where id = (select max(id) from sessions)", [seconds]
            )
            self.db.execute(
                "update runs set wall_seconds = coalesce(wall_seconds, 0) + ?, updated_at = ? where id = ?",
                [seconds, now(), run_id],
            )

    def ingest(self, loaded: Iterable[LoadedRecord]) -> int:
        """One row per input line: pending, or failed with its reason; returns how many lines the input has.
        Lines that already have their row are skipped (finishing the ingest of a run made before runs were
        ingested whole), and a key already in the database is made unique the same way the loader does."""
        known_lines = {row["line"] for row in self.db.query("select line from traces")}
        taken = {row["id"] for row in self.db.query("select id from traces")}
        batch, lines = [], 0
        for item in loaded:
            lines += 1
            if item.line in known_lines:
                continue
            key = item.id if item.id not in taken else unused_key(item.id, taken)
            taken.add(key)
            if item.record is None:
                batch.append(
                    {
                        "id": key,
                        "line": item.line,
                        "source_id": item.source_id,
                        "status": FAILED,
                        "reason": item.error,
                        "attempts": 0,
                        "finished_at": now(),
                    }
                )
                batch[-1] = {name: _cell(value) for name, value in batch[-1].items()}
            else:
                rec = item.record
                batch.append(
                    {
                        "id": key,
                        "line": item.line,
                        "source_id": item.source_id,
                        "question": rec["question"],
                        "response": rec["response"],
                        "gold_answer": rec["gold_answer"],
                        "extra": dumps(rec["extra"]),
                        "status": PENDING,
                        "attempts": 0,
                    }
                )
            if len(batch) >= 500:
                self.db["traces"].insert_all(batch)
                batch = []
        if batch:
            self.db["traces"].insert_all(batch)
        return lines

    def pending_ids(self, limit: int | None = None) -> list[str]:
        """Pending traces in input order; with `limit`, only among the first `limit` records (terminal or not)."""
        last_line = None
        if limit is not None:
            rows = self._rows("select line from traces order by line limit 1 offset ?", [max(limit - 1, 0)])
            last_line = rows[0]["line"] if rows and limit > 0 else 0
        rows = self._rows("select id, line from traces where status = ? order by line", [PENDING])
        return [row["id"] for row in rows if last_line is None or row["line"] <= last_line]

    def reopen_failed(self, reason_prefix: str) -> int:
        """Failed traces whose reason starts with `reason_prefix` become pending again (a resume retries them);
        their old calls and steps stay until the retry's replace them. Returns how many."""
        with self.db.conn:
            cursor = self.db.execute(
                "update traces set status = ?, reason = null, finished_at = null "
                "where status = ? and substr(reason, 1, ?) = ?",
                [PENDING, FAILED, len(reason_prefix), reason_prefix],
            )
        return cursor.rowcount

    def trace_input(self, trace_id: str) -> dict:
        """What the graph needs of one trace: id, question, response, gold_answer."""
        row = self.db["traces"].get(trace_id)
        return {key: row[key] for key in ("id", "question", "response", "gold_answer")}

    def save_result(
        self, trace_id: str, result: dict, steps: list[dict], calls: list[dict], policy_hash: str | None = None
    ) -> None:
        """One transaction per trace: its calls, its steps and its terminal status land together or not at all.
        `policy_hash`: the policy the trace was made with, kept on the trace and on each of its calls."""
        self.save_results([(trace_id, result, steps, calls)], policy_hash)

    def save_results(
        self, finished: list[tuple[str, dict, list[dict], list[dict]]], policy_hash: str | None = None
    ) -> None:
        """Several finished traces (trace_id, result, steps, calls) in one transaction: each trace lands whole or
        not at all, and writing many at once costs less than one transaction each."""
        if not finished:
            return
        step_rows, call_rows, results = [], [], []
        for trace_id, result, steps, calls in finished:
            step_rows += [{**step, "trace_id": trace_id, "step": number} for number, step in enumerate(steps, start=1)]
            # What an endpoint said (its errors, its replies) may echo the API key: masked here, where it is kept.
            call_rows += [
                {
                    **call,
                    "trace_id": trace_id,
                    "seq": seq,
                    "messages": dumps(call["messages"]),
                    "parsed": dumps(call["parsed"]),
                    "policy_hash": policy_hash,
                    "error": scrub_secrets(call.get("error")),
                    "raw_output": scrub_secrets(call.get("raw_output")),
                    "endpoint_errors": dumps(_scrubbed_tries(call.get("endpoint_errors"))),
                }
                for seq, call in enumerate(calls, start=1)
            ]
            results.append(
                {
                    **result,
                    "id": trace_id,
                    "policy_hash": policy_hash,
                    "finished_at": now(),
                    **({"reason": scrub_secrets(result["reason"])} if "reason" in result else {}),
                }
            )
        ids = [trace_id for trace_id, *_ in finished]
        marks = ", ".join("?" for _ in ids)
        with self.db.conn:
            self.db.execute(f"delete from steps where trace_id in ({marks})", ids)
            self.db.execute(f"delete from calls where trace_id in ({marks})", ids)
            self._insert("steps", step_rows)
            self._insert("calls", call_rows)
            self._update_by_id("traces", results)
            # The session's time so far (every process of the session writes here): a kill loses none of it.
            self.db.execute(
                "update sessions set traces = traces + ?, seconds = max(seconds, "
                "(julianday('now') - julianday(started_at)) * 86400.0) "
                "where id = (select max(id) from sessions) and ended = 0",
                [len(finished)],
            )

    # Finished traces are written by plain executemany: sqlite-utils' insert_all inspects every value of every
    # row (a dozen type checks each) and the table's schema per call, most of the CPU a trace's write costs.
    # The tables exist (migrations made them) and every value is a scalar or JSON, as here.

    def _insert(self, table: str, rows: list[dict]) -> None:
        if not rows:
            return
        columns = list(dict.fromkeys(key for row in rows for key in row))
        names = ", ".join(f"[{column}]" for column in columns)
        marks = ", ".join("?" for _ in columns)
        self.db.conn.executemany(
            f"insert into [{table}] ({names}) values ({marks})",
            [tuple(_cell(row.get(column)) for column in columns) for row in rows],
        )

    def _update_by_id(self, table: str, rows: list[dict]) -> None:
        by_columns: dict[tuple, list[dict]] = {}
        for row in rows:
            by_columns.setdefault(tuple(key for key in row if key != "id"), []).append(row)
        for columns, group in by_columns.items():
            assignments = ", ".join(f"[{column}] = ?" for column in columns)
            self.db.conn.executemany(
                f"update [{table}] set {assignments} where id = ?",
                [(*(_cell(row[column]) for column in columns), row["id"]) for row in group],
            )

    # ------------------------------------------------------------ batch mode (drp.teacher.batch)

    def add_batch_job(self, job_id: str, round_number: int, requests: list[dict]) -> None:
        """A job about to be submitted, with its requests (custom_id, trace_id, node, attempt), written before the
        upload so that a kill during submission still leaves its trace."""
        with self.db.conn:
            self.db["batch_jobs"].insert(
                {
                    "id": job_id,
                    "status": "submitting",
                    "round": round_number,
                    "requests": len(requests),
                    "created_at": now(),
                    "updated_at": now(),
                }
            )
            self.db["batch_requests"].upsert_all(
                [{**request, "job_id": job_id} for request in requests], pk="custom_id"
            )

    def update_batch_job(self, job_id: str, **fields) -> None:
        self.db["batch_jobs"].update(job_id, {**fields, "updated_at": now()})

    def batch_jobs(self, statuses: tuple[str, ...] | None = None) -> list[dict]:
        if not self.columns("batch_jobs"):
            return []
        sql, params = "select * from batch_jobs", []
        if statuses:
            sql += f" where status in ({', '.join('?' for _ in statuses)})"
            params = list(statuses)
        return self._rows(sql + " order by created_at", params)

    def batch_job_of(self, custom_id: str) -> str | None:
        """The job a request last went out in."""
        if not self.columns("batch_requests"):
            return None
        rows = self._rows("select job_id from batch_requests where custom_id = ?", [custom_id])
        return rows[0]["job_id"] if rows else None

    def batch_job_requests(self, job_id: str) -> list[str]:
        return [
            row["custom_id"] for row in self._rows("select custom_id from batch_requests where job_id = ?", [job_id])
        ]

    def save_batch_results(self, job_id: str, results: dict[str, tuple[int, dict]]) -> None:
        rows = [
            {"custom_id": custom_id, "job_id": job_id, "status_code": status, "body": dumps(body)}
            for custom_id, (status, body) in results.items()
        ]
        with self.db.conn:
            if rows:
                self.db["batch_results"].upsert_all(rows, pk="custom_id")

    def batch_result(self, custom_id: str) -> tuple[int, dict] | None:
        if not self.columns("batch_results"):
            return None
        rows = self._rows("select status_code, body from batch_results where custom_id = ?", [custom_id])
        return (rows[0]["status_code"], loads(rows[0]["body"])) if rows else None

    # ------------------------------------------------------------ reading

    def run_row(self) -> dict:
        """The `runs` row as stored (JSON columns still text); {} when there is none."""
        if not self.columns("runs"):
            return {}
        rows = self._rows("select * from runs order by created_at desc limit 1")
        if not rows:
            return {}
        run = rows[0]
        if self.columns("sessions"):  # sessions that never ended (killed, or running now) count up to their last trace
            unfinished = self.db.execute("select sum(seconds) from sessions where ended = 0").fetchone()[0]
            run["wall_seconds"] = (run.get("wall_seconds") or 0.0) + (unfinished or 0.0)
        return run

    def status_counts(self) -> dict[str, int]:
        if not self.columns("traces"):
            return {}
        return {
            row["status"]: row["n"]
            for row in self.db.query("select status, count(*) n from traces group by status order by n desc")
        }

    def terminal_count(self) -> int:
        marks = ", ".join("?" for _ in TERMINAL)
        return self.db.execute(f"select count(*) from traces where status in ({marks})", TERMINAL).fetchone()[0]

    def trace_ids(self) -> set[str]:
        if not self.columns("traces"):
            return set()
        return {row["id"] for row in self.db.query("select id from traces")}

    def traces(
        self, columns: Iterable[str] | None = None, statuses: list[str] | None = None, limit: int | None = None
    ) -> list[dict]:
        """Trace rows in input order: all columns, or only `columns` (NULL where this run lacks one)."""
        if not self.columns("traces"):
            return []
        wanted = None if columns is None else tuple(columns)
        sql = f"select {'*' if wanted is None else self._select('traces', wanted)} from traces"
        params: list = []
        if statuses:
            sql += f" where status in ({', '.join('?' for _ in statuses)})"
            params += statuses
        sql += " order by line is null, line, id"
        if limit is not None:
            sql += " limit ?"
            params.append(limit)
        rows = [_sane_tokens(row) for row in self._rows(sql, params)]
        return [_legacy_trace_columns(row) for row in rows] if wanted is None else rows

    def accepted(self) -> list[dict]:
        """The accepted traces in input order, as records: the shape of pruned.jsonl (less the policy)."""
        return [_accepted_record(row) for row in self.traces(statuses=[ACCEPTED])]

    def trace(self, trace_id: str) -> dict | None:
        """One trace's row, every column; None when the run has no such trace."""
        if not self.columns("traces"):
            return None
        rows = self._rows("select * from traces where id = ?", [trace_id])
        return _legacy_trace_columns(_sane_tokens(rows[0])) if rows else None

    def steps(self, trace_id: str) -> list[dict]:
        if not self.columns("steps"):
            return []
        return self._rows("select * from steps where trace_id = ? order by step", [trace_id])

    def calls(self, trace_id: str, nodes: tuple[str, ...] | None = None) -> list[dict]:
        """One trace's calls in order, `messages` and `parsed` decoded (left as text when not JSON)."""
        if not self.columns("calls"):
            return []
        sql = "select * from calls where trace_id = ?"
        params: list = [trace_id]
        if nodes:
            sql += f" and node in ({', '.join('?' for _ in nodes)})"
            params += nodes
        calls = [_legacy_call_columns(_sane_tokens(call)) for call in self._rows(sql + " order by seq", params)]
        for call in calls:
            call["messages"], call["parsed"] = json_or_text(call.get("messages")), json_or_text(call.get("parsed"))
        return calls

    # ------------------------------------------------------------ replies another run reuses (drp.reuse)

    def reusable_replies(self) -> list[tuple[str, int]]:
        """(reuse key, call id) of each keyed teacher reply that came without an error, in call order."""
        rows = self.db.execute(
            "select reuse_key, id from calls where reuse_key is not null and llm "
            "and (error is null or error = '') order by id"
        )
        return [(key, call_id) for key, call_id in rows]

    def reply(self, call_id: int) -> dict | None:
        """What a reuse needs of one stored call: its reply, model and usage, and where it was made."""
        rows = self._rows(
            "select id, trace_id, seq, raw_output, parsed, model, input_tokens, output_tokens, usage "
            "from calls where id = ?",
            [call_id],
        )
        return rows[0] if rows else None

    # ------------------------------------------------------------ run-level tallies (report header)

    def step_tallies(self, per_trace: bool = False) -> list[dict]:
        """Step counts by (skill, action), or by (trace_id, skill, action)."""
        if not self.columns("steps"):
            return []
        keys = "trace_id, skill, action" if per_trace else "skill, action"
        return self._rows(f"select {keys}, count(*) as n from steps group by {keys}")

    def reason_counts(self) -> list[dict]:
        """(status, reason, n) for every trace that has a reason."""
        if not {"status", "reason"} <= self.columns("traces"):
            return []
        return self._rows(
            "select status, reason, count(*) as n from traces where reason is not null "
            "and reason != '' group by status, reason"
        )

    def accepted_token_counts(self) -> list[dict]:
        """Token counts before and after of the accepted traces that have a thinking count."""
        if not {"thinking_tokens_before", "thinking_tokens_after", "status"} <= self.columns("traces"):
            return []
        tokens = self._select(
            "traces",
            ("thinking_tokens_before", "thinking_tokens_after", "response_tokens_before", "response_tokens_after"),
        )
        return self._rows(
            f"select {tokens} from traces where status = ? and thinking_tokens_before > 0 "
            "and thinking_tokens_after is not null",
            [ACCEPTED],
        )

    def attempt_counts(self) -> dict[int, int]:
        if "attempts" not in self.columns("traces"):
            return {}
        return {
            row["attempts"]: row["n"]
            for row in self.db.query(
                "select attempts, count(*) as n from traces where attempts is not null "
                "group by attempts order by attempts"
            )
        }

    def teacher_totals(self) -> dict[str, int | None] | None:
        """Teacher tokens in and out and LLM calls over the run. A total some of whose calls have no token
        counts is None (missing), not their partial sum; `missing_usage` / `counted_usage` say how many calls
        had no usage, and how many of those the teacher's tokenizer counted; `traces` counts the finished traces,
        `unknown_traces` those whose teacher tokens are missing."""
        if not {"teacher_input_tokens", "teacher_output_tokens", "teacher_calls"} <= self.columns("traces"):
            return None
        given, taken = _tokens("teacher_input_tokens"), _tokens("teacher_output_tokens")
        row = self._rows(
            f"select sum({given}) as input, sum({taken}) as output, sum(teacher_calls) as calls, "
            f"sum(teacher_calls > 0 and ({given} is null or {taken} is null)) as unknown, "
            "count(teacher_calls) as traces from traces"
        )[0]
        totals = {key: row[key] or 0 for key in ("input", "output", "calls")}
        totals["traces"], totals["unknown_traces"] = row["traces"] or 0, row["unknown"] or 0
        if row["unknown"]:
            totals["input"] = totals["output"] = None
        return {**totals, **self.usage_counts(), **self.reused_totals()}

    def reused_totals(self) -> dict[str, int | None]:
        """Teacher calls answered from another run's stored replies (--reuse), and their tokens: what reusing saved
        (those calls' tokens as first paid for; None where some were never known)."""
        columns = ("reused_calls", "reused_input_tokens", "reused_output_tokens")
        if not set(columns) <= self.columns("traces"):
            return {"reused_calls": 0, "reused_input": 0, "reused_output": 0}
        row = self._rows(
            "select sum(reused_calls) as calls, sum(reused_input_tokens) as input, "
            "sum(reused_output_tokens) as output, "
            "sum(reused_calls > 0 and reused_input_tokens is null) as unknown from traces"
        )[0]
        unknown = bool(row["unknown"])
        return {
            "reused_calls": row["calls"] or 0,
            "reused_input": None if unknown else row["input"] or 0,
            "reused_output": None if unknown else row["output"] or 0,
        }

    def usage_counts(self) -> dict[str, int]:
        """How many LLM calls had no usage from the server: all of them (`missing_usage`, counts NULL) and those
        counted with the teacher's tokenizer instead (`counted_usage`)."""
        if not self.columns("calls"):
            return {"missing_usage": 0, "counted_usage": 0}
        if "usage" not in self.columns("calls"):  # calls stored before m006 all had the server's usage
            return {"missing_usage": 0, "counted_usage": 0}
        fresh = " where reused_run is null" if "reused_run" in self.columns("calls") else ""  # reused: counted at first
        row = self._rows(
            f"select sum(usage = 'missing') as missing, sum(usage = 'counted') as counted from calls{fresh}"
        )[0]
        return {"missing_usage": row["missing"] or 0, "counted_usage": row["counted"] or 0}

    def seconds_stats(self) -> dict | None:
        if "seconds" not in self.columns("traces"):
            return None
        return self._rows(
            "select sum(seconds) as total, avg(seconds) as mean, max(seconds) as max from traces "
            "where seconds is not null"
        )[0]

    def endpoint_stats(self) -> list[dict]:
        """Per teacher endpoint: calls it answered, failed tries (transport faults and HTTP errors, those that
        another endpoint then took over included) and the mean latency of its calls. Empty before m007."""
        if not {"endpoint", "endpoint_errors", "llm"} <= self.columns("calls"):
            return []
        found: dict[str, dict] = {}

        def entry(name: str) -> dict:
            return found.setdefault(name, {"endpoint": name, "calls": 0, "errors": 0, "latency_ms_total": 0.0})

        rows = self.db.query(
            "select endpoint, endpoint_errors, error, latency_ms from calls "
            "where llm and (endpoint is not null or endpoint_errors is not null)"
        )
        for row in rows:
            failed_tries = json_or_text(row["endpoint_errors"])
            for failure in failed_tries if isinstance(failed_tries, list) else []:
                entry(str(failure.get("endpoint")))["errors"] += 1
            answered = row["endpoint"] and not is_kind(row["error"], TEACHER_ERROR)
            if answered:
                stats = entry(row["endpoint"])
                stats["calls"] += 1
                stats["latency_ms_total"] += row["latency_ms"] or 0.0
        for stats in found.values():
            total = stats.pop("latency_ms_total")
            stats["mean_latency_ms"] = total / stats["calls"] if stats["calls"] else None
        return sorted(found.values(), key=lambda stats: -stats["calls"])

    def node_stats(self) -> list[dict]:
        """Per graph node: calls, tokens, mean latency, errors, distinct models (in graph order)."""
        if not self.columns("calls"):
            return []
        given, taken = _tokens("input_tokens"), _tokens("output_tokens")
        return self._rows(
            # a token total with a call of unknown usage in it is unknown (NULL), not the sum of the rest
            "select node, count(*) as calls, "
            f"case when count({given}) < count(*) then null else sum({given}) end as input_tokens, "
            f"case when count({taken}) < count(*) then null else sum({taken}) end as output_tokens, "
            "avg(latency_ms) as mean_latency_ms, sum(error is not null and error != '') as errors, "
            "count(distinct model) as models from calls group by node order by min(seq), node"
        )


def _accepted_record(row: dict) -> dict:
    return {
        "id": row["id"],
        "question": row["question"],
        "gold_answer": row["gold_answer"],
        "original_answer": row["original_answer"],
        "pruned_answer": row["pruned_answer"],
        "thinking": row["pruned_thinking"],
        "answer_section": row["pruned_answer_section"],
        "response": row["pruned_response"],
        "original_response": row["response"],
        "tokens": {
            "thinking_before": row["thinking_tokens_before"],
            "thinking_after": row["thinking_tokens_after"],
            "response_before": row["response_tokens_before"],
            "response_after": row["response_tokens_after"],
        },
        "attempts": row["attempts"],
        "extra": loads(row["extra"]) or {},
        "policy_hash": row.get("policy_hash"),
    }


def json_or_text(value):
    """A JSON column decoded, or the raw text when it is not JSON (older runs, hand edits)."""
    if not isinstance(value, str):
        return value
    try:
        return loads(value)
    except ValueError:
        return value
