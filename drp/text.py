"""Cutting the thinking into paragraphs, sentences and numbered atomic units (the response layout itself,
thinking vs answer section, lives in drp.layout).

Units are cut deterministically (paragraphs; long paragraphs into sentences), so an agent can name step
boundaries as unit ranges and the original text never has to be re-typed.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])(\s+)(?=[A-Z0-9\\$(\"'*])")

_LIST_MARKER = re.compile(r"\(?\d{1,3}[.)]")

PARAGRAPH = "\n\n"  # what joins a unit that starts a paragraph to the text before it


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def sentences(paragraph: str) -> list[str]:
    return [sentence for _, sentence in _separated_sentences(paragraph)]


def _separated_sentences(paragraph: str) -> list[tuple[str, str]]:
    """(what joined it to the sentence before: a line break or a space, sentence) for each sentence."""
    parts = _SENTENCE_END.split(paragraph)
    pairs, separator = [], " "
    for index, part in enumerate(parts):
        if index % 2:
            separator = "\n" if "\n" in part else " "
        elif part.strip():
            if pairs and _LIST_MARKER.fullmatch(pairs[-1][1]):  # "1." opens its item, it is no sentence
                pairs[-1] = (pairs[-1][0], f"{pairs[-1][1]}{separator}{part.strip()}")
            else:
                pairs.append((separator, part.strip()))
    return pairs


def atomic_units(thinking: str, max_chars: int = 400) -> list[str]:
    """Paragraphs, with paragraphs longer than `max_chars` cut into sentences (then packed back up to it)."""
    return unit_layout(thinking, max_chars)[0]


def unit_layout(thinking: str, max_chars: int = 400) -> tuple[list[str], list[str]]:
    """The atomic units and, for each, what joins it to the text before it: PARAGRAPH where it starts one,
    else the line break or space that stood there, so pruned text keeps the original's layout."""
    units: list[str] = []
    joins: list[str] = []
    for paragraph in paragraphs(thinking):
        if len(paragraph) <= max_chars:
            units.append(paragraph)
            joins.append(PARAGRAPH)
            continue
        current, join = "", PARAGRAPH
        for separator, sentence in _separated_sentences(paragraph):
            if current and len(current) + 1 + len(sentence) > max_chars:
                units.append(current)
                joins.append(join)
                current, join = sentence, separator
            else:
                current = f"{current}{separator}{sentence}" if current else sentence
        if current:
            units.append(current)
            joins.append(join)
    return units, joins


def join_units(texts: list[str], joins: list[str] | None = None) -> str:
    """Pieces of a text in order, each joined to the one before by its entry in `joins` (a new paragraph for
    all, when not given)."""
    out = ""
    for index, text in enumerate(texts):
        text = (text or "").strip()
        if not text:
            continue
        if out:
            out += PARAGRAPH if joins is None else joins[index]
        out += text
    return out


def join_steps(step_texts: list[str]) -> str:
    return join_units(step_texts)
