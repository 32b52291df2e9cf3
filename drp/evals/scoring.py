"""Grading one response against gold: drp.answers extraction (\\boxed{} first) and math-verify equivalence."""

from __future__ import annotations

from dataclasses import dataclass

from drp.answers import equivalent, extract_answer, last_boxed


@dataclass(frozen=True)
class Grade:
    extracted: str | None  # None: no answer could be extracted (counted wrong, and listed)
    source: str | None  # "boxed", or "fallback" ("the answer is X" / last number) when no \boxed{} was given
    correct: bool


def grade(response: str | None, gold: str | None) -> Grade:
    if not response:
        return Grade(None, None, False)
    extracted = extract_answer(response)
    if extracted is None:
        return Grade(None, None, False)
    source = "boxed" if last_boxed(response) else "fallback"
    return Grade(extracted, source, gold is not None and equivalent(gold, extracted))
