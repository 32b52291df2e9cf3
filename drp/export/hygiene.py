"""Data hygiene for an export: drop examples whose question is in an evaluation benchmark, and hold out a
deterministic validation split.

The split goes by question, not by example: several traces of one problem (`drp generate --n 4`) all land on
the same side, so no validation question is also trained on. Which questions are held out depends only on
their text (a hash), never on the order of the runs or of the records.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from drp.contamination import fingerprint


@dataclass
class Exclusion:
    """Examples left out because their question is in a benchmark (per benchmark; one example may count twice)."""

    per_benchmark: dict[str, int] = field(default_factory=dict)
    benchmark_sizes: dict[str, int] = field(default_factory=dict)
    dropped: int = 0


def benchmark_fingerprints(names: list[str], data_dir: Path | None, source: str = "auto") -> dict[str, set[str]]:
    """Benchmark name → fingerprints of its questions; names and files as `drp eval --benchmarks` takes them."""
    from drp.evals.problem_sets import load_benchmark

    found = {}
    for name in names:
        benchmark = load_benchmark(name, data_dir, source)
        found[benchmark.name] = {fingerprint(problem.question) for problem in benchmark.problems}
    return found


def exclude(records: list[dict], benchmarks: dict[str, set[str]]) -> tuple[list[dict], Exclusion]:
    report = Exclusion(
        per_benchmark={name: 0 for name in benchmarks},
        benchmark_sizes={name: len(prints) for name, prints in benchmarks.items()},
    )
    kept = []
    for record in records:
        question = fingerprint(record["question"])
        hits = [name for name, prints in benchmarks.items() if question in prints]
        for name in hits:
            report.per_benchmark[name] += 1
        if hits:
            report.dropped += 1
        else:
            kept.append(record)
    return kept, report


def split_validation(records: list[dict], fraction: float) -> tuple[list[dict], list[dict]]:
    """(train, validation): the questions whose hash ranks lowest go to validation until it holds at least
    `fraction` of the examples (at least one question when fraction > 0 and there are two or more)."""
    if not 0 <= fraction < 1:
        raise ValueError(f"the validation fraction must be at least 0 and below 1, not {fraction}")
    questions = sorted(
        {fingerprint(r["question"]) for r in records},
        key=lambda fp: hashlib.sha256(f"drp-validation:{fp}".encode()).hexdigest(),
    )
    if fraction == 0 or len(questions) < 2:
        return list(records), []
    per_question: dict[str, int] = {}
    for record in records:
        per_question[fingerprint(record["question"])] = per_question.get(fingerprint(record["question"]), 0) + 1
    wanted = fraction * len(records)
    held, count = set(), 0
    for question in questions[:-1]:  # at least one question stays for training
        if count >= wanted and held:
            break
        held.add(question)
        count += per_question[question]
    train = [r for r in records if fingerprint(r["question"]) not in held]
    validation = [r for r in records if fingerprint(r["question"]) in held]
    return train, validation
