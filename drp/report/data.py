"""Reading a run database into the plain dicts the report page embeds.

Everything here tolerates runs written by older or newer code: missing tables, columns, JSON fields or
the `runs` row itself become empty values, never a crash, because a report is most wanted when a run
went wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from drp.paths import run_dir
from drp.store import DB_NAME, loads

# Small columns for the trace list; the long texts are read per trace, when its detail block is written.
LIST_COLUMNS = (
    "id", "line", "status", "reason", "attempts", "question", "gold_answer", "original_answer",
    "pruned_answer", "thinking_tokens_before", "thinking_tokens_after", "response_tokens_before",
    "response_tokens_after", "teacher_input_tokens", "teacher_output_tokens", "teacher_calls", "seconds",
)
DETAIL_COLUMNS = (
    "id", "extra", "original_thinking", "original_answer_section", "pruned_thinking", "pruned_response", "response",
)
STEP_COLUMNS = ("step", "attempt", "unit_start", "unit_end", "skill", "action", "merge_group", "text", "rewritten")
CALL_COLUMNS = (
    "seq", "node", "attempt", "policy", "prompt_name", "prompt_hash", "messages", "raw_output", "parsed",
    "error", "model", "input_tokens", "output_tokens", "latency_ms", "started_at",
)
EMBEDDED_CALL_COLUMNS = (*CALL_COLUMNS, "parsed_is_raw")
THINK_CLOSE = "</think>"


@dataclass
class RunSource:
    """One run opened for reading."""

    name: str
    folder: Path
    db: sqlite_utils.Database
    _columns: dict[str, set[str]] = field(default_factory=dict)  # schema looked up once, not per trace

    def has(self, table: str) -> bool:
        return bool(self.columns(table))

    def columns(self, table: str) -> set[str]:
        if table not in self._columns:
            known = table in self.db.table_names()
            self._columns[table] = {c.name for c in self.db[table].columns} if known else set()
        return self._columns[table]

    def select(self, table: str, wanted: tuple[str, ...]) -> str:
        """A SELECT list of the wanted columns, NULL for the ones this database lacks."""
        have = self.columns(table)
        return ", ".join(f"[{c}]" if c in have else f"NULL AS [{c}]" for c in wanted)


def open_run(run: str) -> RunSource:
    """A run by id (under DRP_RUNS_DIR) or by folder path; read-only use, no migrations applied."""
    folder = run_dir(run)
    db_path = folder / DB_NAME
    if not db_path.exists():
        raise FileNotFoundError(f"no run database at {db_path}")
    # Opened directly rather than via store.open_db: a report must not migrate (write to) the run it reads.
    return RunSource(name=run, folder=folder, db=sqlite_utils.Database(db_path))


def run_info(src: RunSource) -> dict:
    """The `runs` row with its JSON columns decoded, plus config.json when the row lacks a config."""
    row: dict = {}
    if src.has("runs"):
        row = next(iter(src.db.query("SELECT * FROM runs ORDER BY created_at DESC LIMIT 1")), {}) or {}
    info = dict(row)
    for key in ("config", "prompt_hashes"):
        info[key] = _json_or_text(info.get(key))
    if not info.get("config") and (src.folder / "config.json").exists():
        info["config"] = _json_or_text((src.folder / "config.json").read_text())
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    if not info.get("prompt_hashes"):
        info["prompt_hashes"] = config.get("prompt_hashes") or (config.get("policy") or {}).get("prompt_hashes")
    info.setdefault("id", src.folder.name)
    info["folder"] = str(src.folder)
    return info


def list_rows(src: RunSource, statuses: list[str] | None = None, limit: int | None = None) -> list[dict]:
    """The traces to show, in input order, with their small columns."""
    if not src.has("traces"):
        return []
    sql = f"SELECT {src.select('traces', LIST_COLUMNS)} FROM traces"
    params: list = []
    if statuses:
        sql += f" WHERE status IN ({', '.join('?' for _ in statuses)})"
        params += statuses
    sql += " ORDER BY line IS NULL, line, id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return list(src.db.query(sql, params))


def step_summaries(src: RunSource) -> dict[str, dict]:
    """Per trace: its distinct skills and how many steps got each action (for list filters and bars)."""
    found: dict[str, dict] = {}
    if not src.has("steps"):
        return found
    sql = "SELECT trace_id, skill, action, COUNT(*) AS n FROM steps GROUP BY trace_id, skill, action"
    for row in src.db.query(sql):
        entry = found.setdefault(row["trace_id"], {"skills": set(), "actions": {}})
        if row["skill"]:
            entry["skills"].add(row["skill"])
        action = (row["action"] or "?").upper()
        entry["actions"][action] = entry["actions"].get(action, 0) + row["n"]
    return found


def trace_detail(src: RunSource, trace_id: str) -> dict | None:
    """Everything the detail view of one trace needs: texts, steps, verdicts and the agent transcript."""
    if not src.has("traces"):
        return None
    rows = list(src.db.query(f"SELECT {src.select('traces', DETAIL_COLUMNS)} FROM traces WHERE id = ?", [trace_id]))
    if not rows:
        return None
    row = rows[0]
    steps = _steps(src, trace_id)
    calls = _calls(src, trace_id)
    detail = {  # question, answers and token counts travel in the index row, not here
        "extra": _json_or_text(row["extra"]),
        "original_answer_section": row["original_answer_section"],
        "pruned_thinking": row["pruned_thinking"],
        "pruned_answer_section": None,
        "pruned_response": None,
        "original_thinking": None,
        "steps": as_rows(steps, STEP_COLUMNS),
        "calls": as_rows([_embeddable(c) for c in calls], EMBEDDED_CALL_COLUMNS),
        "verdicts": verdicts(calls),
    }
    # The steps already hold the original thinking, and the pruned response is thinking + answer section:
    # keep only what cannot be rebuilt, so big reports stay small.
    if not steps:
        detail["original_thinking"] = row["original_thinking"] or row["response"]
    section = pruned_answer_section(row["pruned_thinking"], row["pruned_response"])
    if section is None:
        detail["pruned_response"] = row["pruned_response"]
    else:
        detail["pruned_answer_section"] = section
    return detail


def comparison(src: RunSource, trace_id: str) -> dict | None:
    """The other run's result for the same trace id, for `--vs` (None when that run lacks the trace)."""
    if not src.has("traces"):
        return None
    rows = list(src.db.query(f"SELECT {src.select('traces', LIST_COLUMNS)}, "
                             f"{src.select('traces', ('pruned_thinking', 'pruned_response'))} "
                             "FROM traces WHERE id = ?", [trace_id]))
    if not rows:
        return None
    row = rows[0]
    steps = _steps(src, trace_id)
    section = pruned_answer_section(row["pruned_thinking"], row["pruned_response"])
    return {
        "status": row["status"],
        "reason": row["reason"],
        "attempts": row["attempts"],
        "pruned_answer": row["pruned_answer"],
        "thinking_tokens_before": row["thinking_tokens_before"],
        "thinking_tokens_after": row["thinking_tokens_after"],
        "response_tokens_before": row["response_tokens_before"],
        "response_tokens_after": row["response_tokens_after"],
        "pruned_thinking": row["pruned_thinking"],
        "pruned_answer_section": section,
        "pruned_response": row["pruned_response"] if section is None else None,
        "steps": as_rows(steps, STEP_COLUMNS),
        "verdicts": verdicts(_calls(src, trace_id, nodes=("verifier",))),
    }


def ids(src: RunSource) -> set[str]:
    if not src.has("traces"):
        return set()
    return {row["id"] for row in src.db.query("SELECT id FROM traces")}


def _steps(src: RunSource, trace_id: str) -> list[dict]:
    if not src.has("steps"):
        return []
    sql = f"SELECT {src.select('steps', STEP_COLUMNS)} FROM steps WHERE trace_id = ? ORDER BY step"
    return [dict(row) for row in src.db.query(sql, [trace_id])]


def as_rows(items: list[dict], columns: tuple[str, ...]) -> list[list]:
    """Dicts → lists of values in `columns` order: the page's JSON then names each key once, not per step
    (a third of a big report's size otherwise)."""
    return [[item.get(c) for c in columns] for item in items]


def _calls(src: RunSource, trace_id: str, nodes: tuple[str, ...] | None = None) -> list[dict]:
    if not src.has("calls"):
        return []
    sql = f"SELECT {src.select('calls', CALL_COLUMNS)} FROM calls WHERE trace_id = ?"
    params: list = [trace_id]
    if nodes:
        sql += f" AND node IN ({', '.join('?' for _ in nodes)})"
        params += nodes
    calls = []
    for row in src.db.query(sql + " ORDER BY seq", params):
        call = dict(row)
        call["messages"] = _json_or_text(call["messages"])
        call["parsed"] = _json_or_text(call["parsed"])
        # Deterministic nodes record the same JSON as raw output and parsed result: embed it once.
        call["parsed_is_raw"] = call["parsed"] is not None and _json_or_text(call["raw_output"]) == call["parsed"]
        calls.append(call)
    return calls


def verdicts(calls: list[dict]) -> list[dict]:
    """The verifier's verdict per attempt, normalised: passed / failures / feedback, the rest kept as is.

    A verdict may be a dict, a bare bool, a list of failures, or missing (the call errored); unknown
    shapes are passed through under `other` so nothing the verifier said is hidden.
    """
    found = []
    for call in calls:
        if call.get("node") != "verifier":
            continue
        parsed = call.get("parsed")
        verdict = {"attempt": call.get("attempt"), "seq": call.get("seq"), "passed": None, "failures": [],
                   "feedback": None, "other": None, "error": call.get("error")}
        if isinstance(parsed, dict):
            rest = dict(parsed)
            passed = next((rest.pop(k) for k in ("passed", "ok", "accepted") if k in rest), None)
            verdict["passed"] = passed if isinstance(passed, bool) else None
            failures = next((rest.pop(k) for k in ("failures", "reasons") if k in rest), [])
            verdict["failures"] = [failures] if isinstance(failures, (str, dict)) else list(failures or [])
            feedback = rest.pop("feedback", None)
            verdict["feedback"] = feedback if isinstance(feedback, str) or feedback is None else str(feedback)
            verdict["other"] = rest or None
        elif isinstance(parsed, bool):
            verdict["passed"] = parsed
        elif isinstance(parsed, list):
            verdict["failures"] = parsed
            verdict["passed"] = not parsed
        elif parsed is not None:
            verdict["other"] = parsed
        if verdict["passed"] is None and verdict["failures"]:
            verdict["passed"] = False
        found.append(verdict)
    return found


def _embeddable(call: dict) -> dict:
    return {**call, "parsed": None} if call["parsed_is_raw"] else call


def reason_kind(reason: str | None) -> str | None:
    """The reason without its particulars ("wrong_original: the trace answers 4, gold is 3" →
    "wrong_original"), so reasons can be counted and filtered by kind."""
    if not reason:
        return None
    return reason.split(":", 1)[0].strip() or reason


def pruned_answer_section(thinking: str | None, response: str | None) -> str | None:
    """What follows the thinking in the pruned response, or None when the response is not thinking-first."""
    if not response or not thinking or not response.startswith(thinking):
        return None
    rest = response[len(thinking):]
    stripped = rest.lstrip()
    if not stripped.startswith(THINK_CLOSE):
        return None
    return stripped[len(THINK_CLOSE):].strip()


def _json_or_text(value):
    """A JSON column decoded, or the raw text when it is not JSON (older runs, hand edits)."""
    if not isinstance(value, str):
        return value
    try:
        return loads(value)
    except ValueError:
        return value
