"""Run-level numbers: counts by status and reason, token reductions, attempts, teacher usage, speed."""

from __future__ import annotations

import statistics
from collections import Counter

from drp.outcomes import ACCEPTED, ENDED_BADLY, PENDING, reason_kind


def _reduction(before, after) -> float | None:
    return 1 - after / before if before else None


def _mean_median(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.median(values)


def compute(store, counter=None, price=None) -> dict:
    """Stats of a run (a drp.store.RunStore). With `counter`, token counts are recomputed with that tokenizer;
    with `price` (a drp.costs.Price), costs use it instead of the price the run was started with."""
    from drp.costs import run_cost, run_price
    from drp.store import json_or_text

    run = store.run_row()
    config = json_or_text(run.get("config"))
    run_price_, batch = run_price(config)
    rows = store.traces()
    status = Counter(r["status"] for r in rows)
    reasons = Counter(reason_kind(r["reason"]) or "" for r in rows if r["status"] in ENDED_BADLY)
    accepted = [r for r in rows if r["status"] == ACCEPTED]
    if counter is not None:
        for r in accepted:
            r["thinking_tokens_before"] = counter.count(r["original_thinking"])
            r["thinking_tokens_after"] = counter.count(r["pruned_thinking"])
            r["response_tokens_before"] = counter.count(r["response"])
            r["response_tokens_after"] = counter.count(r["pruned_response"])
    thinking = [
        x for r in accepted if (x := _reduction(r["thinking_tokens_before"], r["thinking_tokens_after"])) is not None
    ]
    response = [
        x for r in accepted if (x := _reduction(r["response_tokens_before"], r["response_tokens_after"])) is not None
    ]
    finished = [r for r in rows if r["status"] != PENDING]
    processed = [r for r in finished if r["seconds"] is not None]
    attempts = [r["attempts"] for r in processed if r["attempts"]]
    wall = run.get("wall_seconds") or 0.0
    usage = store.teacher_totals() or {}
    # a trace with a teacher call of unknown usage makes the run's teacher tokens unknown, not smaller
    tokens_known = not any(r["teacher_calls"] and r["teacher_input_tokens"] is None for r in processed)
    t_mean, t_median = _mean_median(thinking)
    r_mean, r_median = _mean_median(response)
    return {
        "run_id": run.get("id"),
        "policy": run.get("policy"),
        "teacher_model": run.get("teacher_model"),
        "tokenizer": getattr(counter, "name", None) or run.get("tokenizer"),
        "traces": len(rows),
        "accepted": status.get("accepted", 0),
        "rejected": status.get("rejected", 0),
        "failed": status.get("failed", 0),
        "pending": status.get("pending", 0),
        "reasons": dict(reasons.most_common()),
        "thinking_token_reduction_mean": t_mean,
        "thinking_token_reduction_median": t_median,
        "response_token_reduction_mean": r_mean,
        "response_token_reduction_median": r_median,
        "thinking_tokens_before_mean": _mean([r["thinking_tokens_before"] for r in accepted]),
        "thinking_tokens_after_mean": _mean([r["thinking_tokens_after"] for r in accepted]),
        "response_tokens_before_mean": _mean([r["response_tokens_before"] for r in accepted]),
        "response_tokens_after_mean": _mean([r["response_tokens_after"] for r in accepted]),
        "attempts_per_trace_mean": _mean(attempts),
        "attempts_histogram": dict(sorted(Counter(attempts).items())),
        "teacher_calls_per_trace": _mean([r["teacher_calls"] or 0 for r in processed]),
        "teacher_input_tokens_per_trace": _mean([r["teacher_input_tokens"] or 0 for r in processed])
        if tokens_known
        else None,
        "teacher_output_tokens_per_trace": _mean([r["teacher_output_tokens"] or 0 for r in processed])
        if tokens_known
        else None,
        "teacher_llm_calls": usage.get("calls", 0),
        "teacher_calls_without_usage": usage.get("missing_usage", 0) + usage.get("counted_usage", 0),
        "teacher_calls_counted_with_tokenizer": usage.get("counted_usage", 0),
        "teacher_reused_calls": usage.get("reused_calls", 0),
        "teacher_reused_input_tokens": usage.get("reused_input", 0),
        "teacher_reused_output_tokens": usage.get("reused_output", 0),
        "teacher_reused_calls_per_trace": _mean([r.get("reused_calls") or 0 for r in processed]),
        "cost": run_cost(usage, price or run_price_, batch),
        "endpoints": store.endpoint_stats(),
        "wall_seconds": wall,
        "sessions": run.get("sessions"),
        "traces_per_second": len(processed) / wall if wall else None,
    }


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None
