"""Reading a run database into the plain dicts the report page embeds.

Everything here tolerates runs written by older or newer code: missing tables, columns, JSON fields or
the `runs` row itself become empty values, never a crash, because a report is most wanted when a run
went wrong.
"""

from __future__ import annotations

from drp.paths import run_dir
from drp.store import RunStore, json_or_text, open_run

# Small columns for the trace list; the long texts are read per trace, when its detail block is written.
LIST_COLUMNS = (
    "id",
    "line",
    "status",
    "reason",
    "attempts",
    "question",
    "gold_answer",
    "original_answer",
    "pruned_answer",
    "thinking_tokens_before",
    "thinking_tokens_after",
    "response_tokens_before",
    "response_tokens_after",
    "teacher_input_tokens",
    "teacher_output_tokens",
    "teacher_calls",
    "seconds",
)
STEP_COLUMNS = (
    "step",
    "attempt",
    "unit_start",
    "unit_end",
    "skill",
    "action",
    "merge_group",
    "text",
    "rewritten",
    "echo",
)
CALL_COLUMNS = (
    "seq",
    "node",
    "attempt",
    "policy",
    "prompt_name",
    "prompt_hash",
    "messages",
    "raw_output",
    "parsed",
    "error",
    "model",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "started_at",
    "llm",
    "usage",
    "reused_run",
    "reused_trace",
    "reused_seq",
)
EMBEDDED_CALL_COLUMNS = (*CALL_COLUMNS, "parsed_is_raw")


def open_report_run(run: str) -> RunStore:
    """A run by id (under DRP_RUNS_DIR) or by folder path, opened read-only: a report never changes its run."""
    return open_run(run_dir(run))


def run_info(src: RunStore) -> dict:
    """The `runs` row with its JSON columns decoded, plus config.json when the row lacks a config."""
    info = src.run_row()
    for key in ("config", "prompt_hashes"):
        info[key] = json_or_text(info.get(key))
    if not info.get("config") and (src.folder / "config.json").exists():
        info["config"] = json_or_text((src.folder / "config.json").read_text())
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    if not info.get("prompt_hashes"):
        info["prompt_hashes"] = config.get("prompt_hashes") or (config.get("policy") or {}).get("prompt_hashes")
    info.setdefault("id", src.folder.name)
    info["folder"] = str(src.folder)
    return info


def list_rows(src: RunStore, statuses: list[str] | None = None, limit: int | None = None) -> list[dict]:
    """The traces to show, in input order, with their small columns."""
    return src.traces(LIST_COLUMNS, statuses, limit)


def step_summaries(src: RunStore) -> dict[str, dict]:
    """Per trace: its distinct skills and how many steps got each action (for list filters and bars)."""
    found: dict[str, dict] = {}
    for row in src.step_tallies(per_trace=True):
        entry = found.setdefault(row["trace_id"], {"skills": set(), "actions": {}})
        if row["skill"]:
            entry["skills"].add(row["skill"])
        action = (row["action"] or "?").upper()
        entry["actions"][action] = entry["actions"].get(action, 0) + row["n"]
    return found


def trace_detail(src: RunStore, trace_id: str) -> dict | None:
    """Everything the detail view of one trace needs: texts, steps, verdicts and the agent transcript."""
    row = src.trace(trace_id)
    if row is None:
        return None
    steps = src.steps(trace_id)
    calls = [_with_parsed_is_raw(call) for call in src.calls(trace_id)]
    section = row.get("pruned_answer_section")
    # Echo steps are the teacher's re-typing, not the trace: then the original travels too, and the pruned
    # path is the teacher's own text, not assembled from the steps.
    echoed = any(step.get("echo") for step in steps)
    return {  # question, answers and token counts travel in the index row, not here
        "extra": json_or_text(row.get("extra")),
        "original_answer_section": row.get("original_answer_section"),
        "pruned_thinking": row.get("pruned_thinking"),
        "pruned_answer_section": section,
        # The pruned response is thinking + answer section, and the steps hold the original thinking:
        # keep only what cannot be rebuilt, so big reports stay small.
        "pruned_response": row.get("pruned_response") if section is None else None,
        "original_thinking": (row.get("original_thinking") or row.get("response")) if echoed or not steps else None,
        "echoed": echoed,
        "steps": as_rows(steps, STEP_COLUMNS),
        "calls": as_rows([_embeddable(c) for c in calls], EMBEDDED_CALL_COLUMNS),
        "verdicts": verdicts(calls),
    }


def comparison(src: RunStore, trace_id: str) -> dict | None:
    """The other run's result for the same trace id, for `--vs` (None when that run lacks the trace)."""
    row = src.trace(trace_id)
    if row is None:
        return None
    section = row.get("pruned_answer_section")
    return {
        "status": row.get("status"),
        "reason": row.get("reason"),
        "attempts": row.get("attempts"),
        "pruned_answer": row.get("pruned_answer"),
        "thinking_tokens_before": row.get("thinking_tokens_before"),
        "thinking_tokens_after": row.get("thinking_tokens_after"),
        "response_tokens_before": row.get("response_tokens_before"),
        "response_tokens_after": row.get("response_tokens_after"),
        "pruned_thinking": row.get("pruned_thinking"),
        "pruned_answer_section": section,
        "pruned_response": row.get("pruned_response") if section is None else None,
        "steps": as_rows(src.steps(trace_id), STEP_COLUMNS),
        "verdicts": verdicts(src.calls(trace_id, nodes=("verifier",))),
    }


def as_rows(items: list[dict], columns: tuple[str, ...]) -> list[list]:
    """Dicts → lists of values in `columns` order: the page's JSON then names each key once, not per step
    (a third of a big report's size otherwise)."""
    return [[item.get(c) for c in columns] for item in items]


def _with_parsed_is_raw(call: dict) -> dict:
    # Deterministic nodes record the same JSON as raw output and parsed result: embed it once.
    call["parsed_is_raw"] = call.get("parsed") is not None and json_or_text(call.get("raw_output")) == call["parsed"]
    return call


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
        verdict = {
            "attempt": call.get("attempt"),
            "seq": call.get("seq"),
            "passed": None,
            "failures": [],
            "feedback": None,
            "other": None,
            "error": call.get("error"),
        }
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
