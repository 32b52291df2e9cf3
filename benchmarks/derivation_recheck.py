"""Re-check a finished run's accepted traces with today's derivation check (e.g. a run made with an older one).

    python benchmarks/derivation_recheck.py RUN_ID [--show 3]

For every accepted trace: the derivation verdict the run stored (the check of the code that ran it) against the
verdict of drp/derivation.py as it is now, recomputed from what the run stored (the question, the original and
the pruned thinking and answer sections). Prints how many accepted traces the check now turns away and, for the
first --show of them, the question, the kept text and the missing link the verifier would name.
`drp diff RUN_ID TRACE_ID` shows the same trace step by step."""

from __future__ import annotations

import argparse
import json
import textwrap

from drp.paths import run_dir
from drp.store import json_or_text, open_run


def recheck(run_id: str) -> list[dict]:
    """One row per accepted trace: id, question, kept text, stored verdict, verdict now and its explanation."""
    from drp.agents.verifier import derivation_of

    store = open_run(run_dir(run_id))
    rows = []
    for trace in store.traces(statuses=["accepted"]):
        answer = trace["original_answer"]
        found = derivation_of(
            trace["pruned_thinking"] or "",
            trace["pruned_answer_section"] or "",
            answer,
            trace["question"],
            trace["original_thinking"] or "",
            trace["original_answer_section"] or "",
        )
        checks = json_or_text(trace.get("checks")) or {}
        rows.append(
            {
                "id": trace["id"],
                "question": trace["question"],
                "answer": answer,
                "kept": trace["pruned_thinking"] or "",
                "stored": checks.get("derivation"),
                "now": None if found is None else found[0].answer_derived,
                "why": "" if found is None or found[0].answer_derived else found[0].explain(answer),
                "lost": [] if found is None else found[1],
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_id")
    parser.add_argument("--show", type=int, default=3, help="how many turned-away traces to print in full")
    args = parser.parse_args()
    rows = recheck(args.run_id)
    away = [r for r in rows if r["now"] is False]
    print(
        f"{args.run_id}: {len(rows)} accepted; derivation as stored: "
        f"{sum(r['stored'] is True for r in rows)} pass, {sum(r['stored'] is None for r in rows)} not applicable; "
        f"now: {sum(r['now'] is True for r in rows)} pass, {sum(r['now'] is None for r in rows)} not applicable, "
        f"{len(away)} turned away"
    )
    for row in away[: args.show]:
        print(f"\n## {row['id']} (answer {row['answer']}; stored derivation {row['stored']})")
        print("question:", row["question"])
        print("kept text:\n" + textwrap.indent(row["kept"].strip(), "    "))
        print("missing link:", row["why"] + (f"; no longer written: {', '.join(row['lost'])}" if row["lost"] else ""))
    print(json.dumps({"run": args.run_id, "accepted": len(rows), "turned_away": [r["id"] for r in away]}))


if __name__ == "__main__":
    main()
