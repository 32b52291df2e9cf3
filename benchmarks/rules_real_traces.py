"""The `rules` policy on the 1000 real R1-Distill-Qwen-1.5B traces: speed on one core, accepted share of the
complete, correct traces, and token reduction of the accepted ones.

    python benchmarks/rules_real_traces.py [--policy rules] [--limit N]

Targets (issue 2): ≥ 50 traces/s on one core, ≥ 90% accepted, ≥ 35% mean whole-response reduction."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from drp.outcomes import ACCEPTED, original_usable
from drp.paths import runs_dir, shared_dir
from drp.run_config import RunConfig
from drp.run_place import RunPlace
from drp.run_stats import compute
from drp.runner import run
from drp.store import open_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="rules")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    shared = shared_dir()
    if shared is None:
        sys.exit("../shared is absent: this benchmark needs the real traces")
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    os.environ.setdefault("DRP_RUNS_DIR", tempfile.mkdtemp(prefix="drp-bench-"))
    source = shared / "data" / "traces" / "r1-distill-qwen-1.5b.e2h-gsm8k.jsonl"
    config = RunConfig.from_options(
        {"source": str(source), "policy": args.policy, "overwrite": True, "limit": args.limit, "concurrency": 1}
    )
    started = time.perf_counter()
    summary = run(config, RunPlace.under(runs_dir(), f"bench-{args.policy}"), progress=False)
    total = time.perf_counter() - started
    store = open_run(summary.path)
    stats = compute(store)
    rows = store.traces(("status", "reason"))
    # outside the acceptance denominator: traces whose original is not a complete, correct trace
    eligible = [r for r in rows if original_usable(r["reason"])]
    accepted = sum(r["status"] == ACCEPTED for r in eligible)
    print(
        f"policy {args.policy}: {len(rows)} traces, graph time {summary.seconds:.1f}s "
        f"(process incl. tokenizer load and ingest {total:.1f}s) on one core"
    )
    print(f"traces/s (graph + storage): {summary.processed / summary.seconds:.1f}   target >= 50")
    print(
        f"complete & correct originals: {len(eligible)}; "
        f"accepted {accepted} = {accepted / len(eligible):.1%}   target >= 90%"
    )
    print(
        f"mean whole-response token reduction (accepted): {stats['response_token_reduction_mean']:.1%}   target >= 35%"
    )
    print(
        f"mean thinking token reduction (accepted): {stats['thinking_token_reduction_mean']:.1%}; "
        f"response tokens {stats['response_tokens_before_mean']:.0f} -> {stats['response_tokens_after_mean']:.0f}"
    )
    print("rejections/failures by reason:", stats["reasons"])


if __name__ == "__main__":
    main()
