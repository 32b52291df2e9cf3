"""Helpers of benchmarks/local_teacher.sh: pick the shortest shared traces, and print a run's table.

    python benchmarks/local_teacher_table.py select --out FILE [--count 20] [--source FILE]
    python benchmarks/local_teacher_table.py table RUN_ID [RUN_ID ...]

The table (issue 11): accepted / rejected / failed, calls per trace, teacher tokens in/out per trace, seconds per
trace (mean and max), mean thinking-token reduction of the accepted traces, and how many accepted traces pass the
derivation check (recomputed here, whatever the policy gated on). Traces whose original is incomplete or wrong
are outside the acceptance denominator, as in benchmarks/rules_real_traces.py."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from drp.jsonl import read_jsonl, write_jsonl
from drp.outcomes import ACCEPTED, FAILED, PENDING, REJECTED, original_usable, reason_kind
from drp.paths import run_dir, shared_dir
from drp.store import open_run

SHARED_TRACES = "data/traces/r1-distill-qwen-1.5b.e2h-gsm8k.jsonl"


def select(source: Path, count: int, out: Path) -> None:
    """The `count` shortest records by response length (ties by id), in that order."""
    records = read_jsonl(source)
    records.sort(key=lambda r: (len(r.get("response") or ""), str(r.get("id"))))
    write_jsonl(out, records[:count])
    print(f"{min(count, len(records))} shortest traces of {source} -> {out}", file=sys.stderr)


def row_of(run_id: str) -> dict:
    from drp.agents.verifier import derivation_of

    store = open_run(run_dir(run_id))
    run = store.run_row()
    traces = [t for t in store.traces() if t["status"] != PENDING]
    eligible = [t for t in traces if original_usable(t["reason"])]
    accepted = [t for t in traces if t["status"] == ACCEPTED]
    spent = [t for t in eligible if t["seconds"] is not None]
    derived = sum(_derives(t, derivation_of) for t in accepted)
    reductions = [
        1 - t["thinking_tokens_after"] / t["thinking_tokens_before"] for t in accepted if t["thinking_tokens_before"]
    ]
    reasons: dict[str, int] = {}
    for t in traces:
        if t["status"] != ACCEPTED:
            kind = reason_kind(t["reason"]) or ""
            reasons[kind] = reasons.get(kind, 0) + 1
    echo = [call["parsed"] for t in traces for call in store.calls(t["id"], nodes=("echo_check",))]
    coverages = [p["coverage"] for p in echo if isinstance(p, dict) and "coverage" in p]
    mean = lambda values: statistics.fmean(values) if values else float("nan")  # noqa: E731
    return {
        "run": run_id,
        "policy": run.get("policy"),
        "traces": len(traces),
        "eligible": len(eligible),
        "accepted": len(accepted),
        "rejected": sum(t["status"] == REJECTED for t in traces),
        "failed": sum(t["status"] == FAILED for t in traces),
        "accepted_of_eligible": len(accepted) / len(eligible) if eligible else float("nan"),
        "calls_per_trace": mean([t["teacher_calls"] or 0 for t in spent]),
        "tokens_in_per_trace": mean([t["teacher_input_tokens"] or 0 for t in spent]),
        "tokens_out_per_trace": mean([t["teacher_output_tokens"] or 0 for t in spent]),
        "seconds_per_trace": mean([t["seconds"] for t in spent]),
        "max_seconds": max((t["seconds"] for t in spent), default=float("nan")),
        "thinking_reduction": mean(reductions),
        "derivation_pass": derived,
        "echo_coverage_mean": mean(coverages) if coverages else None,
        "reasons": reasons,
    }


def _derives(trace: dict, derivation_of) -> bool:
    """The verifier's derivation check, recomputed from what the run stored (True when it cannot apply)."""
    found = derivation_of(
        trace["pruned_thinking"] or "",
        trace["pruned_answer_section"] or "",
        trace["original_answer"],
        trace["question"],
        trace["original_thinking"] or "",
        trace["original_answer_section"] or "",
    )
    return found is None or found[0].answer_derived


def table(run_ids: list[str]) -> None:
    rows = [row_of(run_id) for run_id in run_ids]
    print(
        "| policy | accepted / rejected / failed (eligible) | accepted of eligible | calls/trace | "
        "teacher tokens in/out per trace | s/trace | max s/trace | thinking reduction (accepted) | "
        "derivation check (accepted) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| `{r['policy']}` | {r['accepted']} / {r['rejected']} / {r['failed']} ({r['eligible']}) | "
            f"{r['accepted_of_eligible']:.0%} | {r['calls_per_trace']:.1f} | "
            f"{r['tokens_in_per_trace']:.0f} / {r['tokens_out_per_trace']:.0f} | {r['seconds_per_trace']:.0f} | "
            f"{r['max_seconds']:.0f} | {r['thinking_reduction']:.1%} | {r['derivation_pass']} / {r['accepted']} |"
        )
    for r in rows:
        extra = f"; echo coverage mean {r['echo_coverage_mean']:.1%}" if r["echo_coverage_mean"] is not None else ""
        print(f"{r['run']}: not accepted by reason {r['reasons']}{extra}")
    print(json.dumps(rows), file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pick = commands.add_parser("select", help="write the shortest shared traces to a file")
    pick.add_argument("--out", type=Path, required=True)
    pick.add_argument("--count", type=int, default=20)
    pick.add_argument("--source", type=Path, default=None, help=f"default: ../shared/{SHARED_TRACES}")
    show = commands.add_parser("table", help="print the issue-11 table of one or more runs")
    show.add_argument("run_ids", nargs="+")
    args = parser.parse_args()
    if args.command == "select":
        source = args.source
        if source is None:
            shared = shared_dir()
            if shared is None:
                sys.exit(f"../shared is absent: pass --traces FILE (or --source) instead of ../shared/{SHARED_TRACES}")
            source = shared / SHARED_TRACES
        select(source, args.count, args.out)
    else:
        table(args.run_ids)


if __name__ == "__main__":
    main()
