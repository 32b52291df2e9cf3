"""Run-level numbers for the report header: counts, token reduction, attempts, teacher cost, time.

Computed over the whole run (not just the traces a `--status`/`--limit` report lists), with SQL
aggregates so a 10,000-trace run costs a few queries.
"""

from __future__ import annotations

import statistics

from drp.report.data import RunSource, reason_kind

TOKEN_COLUMNS = ("thinking_tokens_before", "thinking_tokens_after", "response_tokens_before", "response_tokens_after")
HISTOGRAM_BINS = 20  # 5-point bins of reduction from 0% to 100%; negative reductions go to their own bin


def summarise(src: RunSource) -> dict:
    tables = set(src.db.table_names())
    has = src.columns("traces")
    summary: dict = {"traces": 0, "status": {}, "reasons": [], "reduction": None, "attempts": {},
                     "teacher": {}, "seconds": {}, "actions": {}, "skills": {}, "nodes": []}
    if "traces" not in tables:
        return summary

    def query(sql: str, params=()):
        return list(src.db.query(sql, params))

    summary["traces"] = query("SELECT COUNT(*) AS n FROM traces")[0]["n"]
    if "status" in has:
        summary["status"] = {r["status"] or "unknown": r["n"] for r in
                             query("SELECT status, COUNT(*) AS n FROM traces GROUP BY status ORDER BY n DESC")}
    if {"status", "reason"} <= has:
        summary["reasons"] = reasons(query(
            "SELECT status, reason, COUNT(*) AS n FROM traces WHERE reason IS NOT NULL AND reason != '' "
            "GROUP BY status, reason"))
    if {"thinking_tokens_before", "thinking_tokens_after", "status"} <= has:
        tokens = src.select("traces", TOKEN_COLUMNS)
        summary["reduction"] = reduction(query(
            f"SELECT {tokens} FROM traces WHERE status = 'accepted' AND thinking_tokens_before > 0 "
            "AND thinking_tokens_after IS NOT NULL"))
    if "attempts" in has:
        summary["attempts"] = {str(r["attempts"]): r["n"] for r in query(
            "SELECT attempts, COUNT(*) AS n FROM traces WHERE attempts IS NOT NULL GROUP BY attempts ORDER BY attempts")}
    if {"teacher_input_tokens", "teacher_output_tokens", "teacher_calls"} <= has:
        row = query("SELECT SUM(teacher_input_tokens) AS input, SUM(teacher_output_tokens) AS output, "
                    "SUM(teacher_calls) AS calls FROM traces")[0]
        summary["teacher"] = {k: row[k] or 0 for k in ("input", "output", "calls")}
    if "seconds" in has:
        row = query("SELECT SUM(seconds) AS total, AVG(seconds) AS mean, MAX(seconds) AS max FROM traces "
                    "WHERE seconds IS NOT NULL")[0]
        summary["seconds"] = dict(row)
    if "steps" in tables:
        summary["actions"] = {(r["action"] or "?").upper(): r["n"] for r in
                              query("SELECT action, COUNT(*) AS n FROM steps GROUP BY action ORDER BY n DESC")}
        skills: dict[str, dict[str, int]] = {}
        for r in query("SELECT skill, action, COUNT(*) AS n FROM steps GROUP BY skill, action"):
            per = skills.setdefault(r["skill"] or "(none)", {})
            per[(r["action"] or "?").upper()] = r["n"]
        summary["skills"] = dict(sorted(skills.items(), key=lambda kv: -sum(kv[1].values())))
    if "calls" in tables:
        summary["nodes"] = query(
            "SELECT node, COUNT(*) AS calls, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, "
            "AVG(latency_ms) AS mean_latency_ms, SUM(error IS NOT NULL AND error != '') AS errors, "
            "COUNT(DISTINCT model) AS models FROM calls GROUP BY node ORDER BY MIN(seq), node")
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
    rows = [(r["thinking_tokens_before"], r["thinking_tokens_after"], r["response_tokens_before"],
             r["response_tokens_after"]) for r in rows]
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
