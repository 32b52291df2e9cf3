"""Splitting a model response into thinking and answer, and the thinking into numbered atomic units.

Units are cut deterministically (paragraphs; long paragraphs into sentences), so an agent can name step
boundaries as unit ranges and the original text never has to be re-typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\\$(\"'*])")


@dataclass(frozen=True)
class SplitResponse:
    thinking: str
    answer_section: str
    complete: bool  # False when the thinking never closed (generation ran out of tokens)


def split_response(response: str) -> SplitResponse:
    """`<think>…</think>answer` or `…</think>answer` (the opening tag was in the prompt)."""
    close = response.find(THINK_CLOSE)
    if close < 0:
        body = response.split(THINK_OPEN, 1)[-1]
        return SplitResponse(thinking=body.strip(), answer_section="", complete=False)
    thinking = response[:close]
    if THINK_OPEN in thinking:
        thinking = thinking.split(THINK_OPEN, 1)[1]
    return SplitResponse(
        thinking=thinking.strip(), answer_section=response[close + len(THINK_CLOSE) :].strip(), complete=True
    )


def join_response(thinking: str, answer_section: str) -> str:
    """The response layout the student is trained on (the opening <think> belongs to the prompt)."""
    return f"{thinking.strip()}\n{THINK_CLOSE}\n\n{answer_section.strip()}"


def answer_section_after(thinking: str | None, response: str | None) -> str | None:
    """What follows `thinking` and its closing tag in `response`; None when the response does not start with
    that thinking (for runs stored before the pruned answer section had its own column)."""
    if not response or not thinking or not response.startswith(thinking):
        return None
    rest = response[len(thinking):].lstrip()
    if not rest.startswith(THINK_CLOSE):
        return None
    return rest[len(THINK_CLOSE):].strip()


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]


def atomic_units(thinking: str, max_chars: int = 400) -> list[str]:
    """Paragraphs, with paragraphs longer than `max_chars` cut into sentences (then packed back up to it)."""
    units: list[str] = []
    for paragraph in paragraphs(thinking):
        if len(paragraph) <= max_chars:
            units.append(paragraph)
            continue
        current = ""
        for sentence in sentences(paragraph):
            if current and len(current) + 1 + len(sentence) > max_chars:
                units.append(current)
                current = sentence
            else:
                current = f"{current} {sentence}".strip()
        if current:
            units.append(current)
    return units


def join_steps(step_texts: list[str]) -> str:
    return "\n\n".join(t.strip() for t in step_texts if t and t.strip())
