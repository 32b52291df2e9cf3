"""A trace's graph run, ended: its final state turned into the store's rows (result columns, steps, calls),
its tokens counted where the graph did not count them already."""

from __future__ import annotations

from drp.layout import join_response
from drp.outcomes import ACCEPTED
from drp.store import dumps


def result_rows(trace: dict, state: dict, counter) -> tuple[dict, list[dict], list[dict]]:
    """The graph's final state → the trace's result columns, its steps and its calls, for the store."""
    calls = state.get("calls") or []
    accepted = state["status"] == ACCEPTED
    thinking = state.get("thinking")
    pruned_thinking = state.get("pruned_thinking") if accepted else None
    pruned_answer_section = state.get("pruned_answer_section", "").strip() if accepted else None
    pruned_response = join_response(pruned_thinking, pruned_answer_section) if accepted else None
    result = {
        "status": state["status"],
        "reason": state.get("reason"),
        "attempts": state.get("attempt") or 0,
        "original_answer": state.get("original_answer"),
        "pruned_answer": state.get("pruned_answer"),
        "original_thinking": thinking,
        "original_answer_section": state.get("answer_section"),
        "pruned_thinking": pruned_thinking,
        "pruned_answer_section": pruned_answer_section,
        "pruned_response": pruned_response,
        "thinking_tokens_before": counter.count(thinking) if thinking else None,
        "thinking_tokens_after": counter.count(pruned_thinking) if accepted else None,
        "response_tokens_before": _response_tokens_before(state, trace, counter),
        "response_tokens_after": _response_tokens_after(state, counter, pruned_response) if accepted else None,
        "teacher_input_tokens": _teacher_tokens(calls, "input_tokens"),
        "teacher_output_tokens": _teacher_tokens(calls, "output_tokens"),
        "teacher_calls": sum(1 for c in calls if c["llm"] and not c.get("reused_run")),
        "reused_calls": sum(1 for c in calls if c.get("reused_run")),
        "reused_input_tokens": _teacher_tokens(calls, "input_tokens", reused=True),
        "reused_output_tokens": _teacher_tokens(calls, "output_tokens", reused=True),
        "seconds": round(state.get("seconds", 0.0), 4),
        "checks": dumps((state.get("verdict") or {}).get("checks")),
    }
    steps = [
        {
            "attempt": state.get("attempt") or 0,
            "unit_start": step.get("unit_start"),
            "unit_end": step.get("unit_end"),
            "skill": step.get("skill"),
            "action": step.get("action"),
            "merge_group": step.get("merge_group"),
            "text": step.get("text"),
            "rewritten": step.get("rewritten"),
            "echo": step.get("echo"),
        }
        for step in state.get("steps") or []
    ]
    return result, steps, calls


def _teacher_tokens(calls: list[dict], key: str, reused: bool = False) -> int | None:
    """The trace's teacher tokens this run spent (with `reused`: those of the replies it reused instead); None
    (missing) when a teacher reply came without usage and uncounted."""
    counts = [call[key] for call in calls if call["llm"] and bool(call.get("reused_run")) == reused]
    return None if any(count is None for count in counts) else sum(counts)


def _response_tokens_before(state: dict, trace: dict, counter) -> int | None:
    """Counted by the prepare node; None when it left the record unread (too long to tokenize)."""
    if "response_tokens_before" in state:
        return state["response_tokens_before"]
    return counter.count(trace["response"])


def _response_tokens_after(state: dict, counter, pruned_response: str) -> int:
    """The verifier already counted the accepted response; count again only if it did not."""
    verdict = state.get("verdict") or {}
    counted = verdict.get("response_tokens_after") if verdict.get("passed") else None
    return counted if counted is not None else counter.count(pruned_response)
