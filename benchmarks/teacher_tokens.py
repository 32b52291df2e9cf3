"""Teacher tokens per trace of two runs on the traces they share (issue 11's target: skill-aware's output
tokens per trace at most 0.5x those of paper on the same traces, goal 0.25x).

    python benchmarks/teacher_tokens.py RUN_A RUN_B

Traces are paired by their question (the runs may hold different records, e.g. 20 traces and their 8
shortest); only traces both runs finished are compared. Prints the per-trace table and the ratios A / B of the
mean input and output tokens per trace."""

from __future__ import annotations

import argparse
import json
import statistics

from drp.paths import run_dir
from drp.store import open_run


def finished_tokens(run_id: str) -> tuple[str, dict[str, dict]]:
    """The run's policy, and per question the finished trace's status and teacher tokens."""
    store = open_run(run_dir(run_id))
    rows = {}
    for t in store.traces():
        if t["status"] == "pending":
            continue
        rows[t["question"]] = {
            "id": t["id"],
            "status": t["status"],
            "calls": t["teacher_calls"] or 0,
            "in": t["teacher_input_tokens"],
            "out": t["teacher_output_tokens"],
        }
    return store.run_row().get("policy"), rows


def compare(run_a: str, run_b: str) -> dict:
    policy_a, a = finished_tokens(run_a)
    policy_b, b = finished_tokens(run_b)
    # A trace whose token counts are missing (no usage, no tokenizer) cannot be compared, never counted as 0.
    shared = [q for q in a if q in b and None not in (a[q]["in"], a[q]["out"], b[q]["in"], b[q]["out"])]
    print(f"| trace | {policy_a} status | {policy_a} in / out | {policy_b} status | {policy_b} in / out |")
    print("|---|---|---|---|---|")
    for q in shared:
        print(
            f"| {a[q]['id']} | {a[q]['status']} | {a[q]['in']} / {a[q]['out']} | {b[q]['status']} | "
            f"{b[q]['in']} / {b[q]['out']} |"
        )
    mean = lambda rows, key: statistics.fmean(r[key] for r in rows) if rows else float("nan")  # noqa: E731
    ours, theirs = [a[q] for q in shared], [b[q] for q in shared]
    result = {
        "runs": [run_a, run_b],
        "policies": [policy_a, policy_b],
        "traces": len(shared),
        "out_per_trace": [mean(ours, "out"), mean(theirs, "out")],
        "in_per_trace": [mean(ours, "in"), mean(theirs, "in")],
    }
    out_b, in_b = result["out_per_trace"][1], result["in_per_trace"][1]
    result["out_ratio"] = result["out_per_trace"][0] / out_b if out_b else float("nan")
    result["in_ratio"] = result["in_per_trace"][0] / in_b if in_b else float("nan")
    print(
        f"\n{len(shared)} shared traces: output tokens per trace {result['out_per_trace'][0]:.0f} ({policy_a}) vs "
        f"{out_b:.0f} ({policy_b}) = {result['out_ratio']:.2f}x; input {result['in_per_trace'][0]:.0f} vs "
        f"{in_b:.0f} = {result['in_ratio']:.2f}x"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    args = parser.parse_args()
    print(json.dumps(compare(args.run_a, args.run_b)))


if __name__ == "__main__":
    main()
