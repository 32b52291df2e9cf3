"""Cutting the thinking into paragraphs, sentences and numbered atomic units (the response layout itself,
thinking vs answer section, lives in drp.layout).

Units are cut deterministically (paragraphs; long paragraphs into sentences), so an agent can name step
boundaries as unit ranges and the original text never has to be re-typed.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\\$(\"'*])")


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
