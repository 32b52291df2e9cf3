"""Cutting the thinking into paragraphs, sentences and numbered atomic units (the response layout itself,
thinking vs answer section, lives in drp.layout).

Units are cut deterministically (paragraphs; long paragraphs into sentences), so an agent can name step
boundaries as unit ranges and the original text never has to be re-typed.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\\$(\"'*])")


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]


def atomic_units(thinking: str, max_chars: int = 400) -> list[str]:
    """Paragraphs, with paragraphs longer than `max_chars` cut into sentences (then packed back up to it)."""
    return unit_layout(thinking, max_chars)[0]


def unit_layout(thinking: str, max_chars: int = 400) -> tuple[list[str], list[bool]]:
    """The atomic units and, for each, whether it starts a paragraph (the others continue one: joined back
    with a space, so pruned text keeps the original's paragraphs)."""
    units: list[str] = []
    breaks: list[bool] = []
    for paragraph in paragraphs(thinking):
        if len(paragraph) <= max_chars:
            units.append(paragraph)
            breaks.append(True)
            continue
        current, first = "", True
        for sentence in sentences(paragraph):
            if current and len(current) + 1 + len(sentence) > max_chars:
                units.append(current)
                breaks.append(first)
                current, first = sentence, False
            else:
                current = f"{current} {sentence}".strip()
        if current:
            units.append(current)
            breaks.append(first)
    return units, breaks


def join_units(texts: list[str], breaks: list[bool] | None = None) -> str:
    """Pieces of a text in order: a new paragraph where `breaks` says one starts (all, when not given)."""
    out = ""
    for index, text in enumerate(texts):
        text = (text or "").strip()
        if not text:
            continue
        if out:
            out += "\n\n" if breaks is None or breaks[index] else " "
        out += text
    return out


def join_steps(step_texts: list[str]) -> str:
    return join_units(step_texts)
