"""How often the derivation check passes on unpruned, correct real traces (its false-rejection floor).

    python benchmarks/derivation_strictness.py [--limit N] [--show N] [--ids]

For every complete trace of the shared R1-Distill-Qwen-1.5B set whose answer matches gold, the text the verifier
reads (the thinking when it reaches the answer, else thinking + answer section) is checked against its answer
and question, as the verifier checks an original (`own_derivation`: the numbers it uses without deriving count as
given). A failure means the verifier cannot hold that trace's prunings to a derivation (the check does not
apply), so this share is the check's coverage; the strict check should keep it high. Also printed: the share
that passes with the question's numbers as the only givens (no facts from the text itself).
Run it with PYTHONPATH pointing at the tree to measure (main's for the old check, a worktree's for a new one)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from drp.agents.verifier import reaches_answer
from drp.answers import equivalent, extract_answer
from drp.derivation import check, own_derivation
from drp.layout import split_response
from drp.paths import shared_dir

SHARED_TRACES = "data/traces/r1-distill-qwen-1.5b.e2h-gsm8k.jsonl"


def correct_originals(limit: int | None):
    """(id, question, the text the verifier reads, answer) of each complete trace whose answer matches gold."""
    shared = shared_dir()
    if shared is None:
        sys.exit("../shared is absent: this benchmark needs the real traces")
    lines = (shared / SHARED_TRACES).read_text().splitlines()[:limit]
    for line in lines:
        record = json.loads(line)
        split = split_response(record["response"])
        answer = extract_answer(split.answer_section)
        if not split.complete or not equivalent(record.get("gold_answer"), answer):
            continue
        text = split.thinking
        if not reaches_answer(split.thinking, answer)[0]:
            text = f"{split.thinking}\n\n{split.answer_section}"
        yield record["id"], record["question"], text, answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N records")
    parser.add_argument("--show", type=int, default=0, help="print the explanation of the first N failures")
    parser.add_argument("--ids", action="store_true", help="print the ids of every failure (stderr)")
    args = parser.parse_args()
    started = time.perf_counter()
    total = own = question_only = 0
    failures: list[tuple[str, str]] = []
    for trace_id, question, text, answer in correct_originals(args.limit):
        total += 1
        found = own_derivation(text, answer, question)
        own += found.answer_derived
        question_only += check(text, answer, question).answer_derived
        if not found.answer_derived:
            failures.append((trace_id, found.explain(answer)))
    seconds = time.perf_counter() - started
    print(f"correct complete originals: {total}")
    print(f"derive their answer (as the verifier reads an original): {own} = {own / total:.1%}")
    print(f"derive it from the question's numbers alone: {question_only} = {question_only / total:.1%}")
    print(f"check time: {seconds:.1f}s")
    for trace_id, why in failures[: args.show]:
        print(f"  {trace_id}: {why[:300]}")
    if args.ids:
        print(" ".join(trace_id for trace_id, _ in failures), file=sys.stderr)


if __name__ == "__main__":
    main()
