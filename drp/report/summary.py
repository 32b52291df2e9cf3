"""Run-level numbers for the report header: counts, token reduction, attempts, teacher cost, time.

Computed over the whole run (not just the traces a `--status`/`--limit` report lists), from the store's
SQL aggregates, so a 10,000-trace run costs a few queries.
"""

from __future__ import annotations

import statistics

from drp.costs import run_cost, run_price
from drp.outcomes import reason_kind
from drp.store import RunStore, json_or_text

HISTOGRAM_BINS = 20  # 5-point bins of reduction from 0% to 100%; negative reductions go to their own bin


def summarise(src: RunStore) -> dict:
    status = src.status_counts()
    summary: dict = {
        "traces": sum(status.values()),
        "status": {},
        "reasons": [],
        "reduction": None,
        "attempts": {},
        "teacher": {},
        "seconds": {},
        "actions": {},
        "skills": {},
        "nodes": [],
        "endpoints": [],
        "cost": None,
    }
    if not src.columns("traces"):
        return summary
    summary["status"] = {key or "unknown": n for key, n in status.items()}
    summary["reasons"] = reasons(src.reason_counts())
    summary["reduction"] = reduction(src.accepted_token_counts())
    summary["attempts"] = {str(attempts): n for attempts, n in src.attempt_counts().items()}
    summary["teacher"] = src.teacher_totals() or {}
    summary["cost"] = run_cost(summary["teacher"], *run_price(json_or_text(src.run_row().get("config"))))
    summary["seconds"] = src.seconds_stats() or {}
    tallies = src.step_tallies()
    actions: dict[str, int] = {}
    skills: dict[str, dict[str, int]] = {}
    for r in tallies:
        action = (r["action"] or "?").upper()
        actions[action] = actions.get(action, 0) + r["n"]
        per = skills.setdefault(r["skill"] or "(none)", {})
        per[action] = per.get(action, 0) + r["n"]
    summary["actions"] = dict(sorted(actions.items(), key=lambda kv: -kv[1]))
    summary["skills"] = dict(sorted(skills.items(), key=lambda kv: -sum(kv[1].values())))
    summary["nodes"] = src.node_stats()
    summary["endpoints"] = src.endpoint_stats()
    return summary


def reasons(rows: list[dict]) -> list[dict]:
    """Counts per (status, reason kind), most common first, each with one full reason as an example."""
    kinds: dict[tuple, dict] = {}
    for row in rows:
        key = (row["status"], reason_kind(row["reason"]))
        entry = kinds.setdefault(key, {"status": key[0], "kind": key[1], "n": 0, "example": row["reason"]})
        entry["n"] += row["n"]
    return sorted(kinds.values(), key=lambda e: (-e["n"], str(e["status"]), e["kind"]))


def reduction(rows: list[dict]) -> dict | None:
    """Thinking-token reduction over accepted traces: per-trace mean/median, totals, and a histogram."""
    if not rows:
        return None
    rows = [
        (
            r["thinking_tokens_before"],
            r["thinking_tokens_after"],
            r["response_tokens_before"],
            r["response_tokens_after"],
        )
        for r in rows
    ]
    per_trace = [1.0 - a / b for b, a, _, _ in rows]
    bins = [0] * (HISTOGRAM_BINS + 1)  # bins[0] holds negative reductions (the pruned text grew)
    for value in per_trace:
        bins[0 if value < 0 else 1 + min(HISTOGRAM_BINS - 1, int(value * HISTOGRAM_BINS))] += 1
    before = sum(b for b, _, _, _ in rows)
    after = sum(a for _, a, _, _ in rows)
    response = [(rb, ra) for _, _, rb, ra in rows if rb and ra is not None]
    return {
        "n": len(rows),
        "mean": statistics.fmean(per_trace),
        "median": statistics.median(per_trace),
        "min": min(per_trace),
        "max": max(per_trace),
        "tokens_before_mean": before / len(rows),
        "tokens_after_mean": after / len(rows),
        "tokens_before_median": statistics.median(b for b, _, _, _ in rows),
        "tokens_after_median": statistics.median(a for _, a, _, _ in rows),
        "total": 1.0 - after / before,
        "response_total": (1.0 - sum(ra for _, ra in response) / sum(rb for rb, _ in response)) if response else None,
        "histogram": {"negative": bins[0], "bins": bins[1:], "width": 1.0 / HISTOGRAM_BINS},
    }
