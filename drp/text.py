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
LONGEST_UNIT = 2000  # characters: a longer sentence is cut at its line breaks, then at spaces (units.longest)


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


def _pieces(paragraph: str, longest: int) -> list[tuple[str, str]]:
    """A paragraph's sentences, as (what joined it to the one before, sentence). A sentence longer than `longest`
    characters (a display-math block, a table) comes as runs of its lines, and a line longer than that (no
    break at all) as runs of its words, each run at most `longest`: no unit outgrows a small teacher's context."""
    pieces = []
    for separator, sentence in _separated_sentences(paragraph):
        if len(sentence) <= longest:
            pieces.append((separator, sentence))
            continue
        parts = []
        for line in filter(None, (line.strip() for line in sentence.split("\n"))):
            if len(line) <= longest:
                parts.append(("\n", line))
            else:
                parts.extend(("\n" if index == 0 else " ", word) for index, word in enumerate(line.split()))
        runs = _packed(parts, longest)
        pieces.extend((separator if index == 0 else join, run) for index, (join, run) in enumerate(runs))
    return pieces


def _packed(parts: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """(join, text) parts packed in order into runs of at most `limit` characters (a longer part stays whole)."""
    runs: list[tuple[str, str]] = []
    for join, text in parts:
        if runs and len(runs[-1][1]) + len(join) + len(text) <= limit:
            runs[-1] = (runs[-1][0], f"{runs[-1][1]}{join}{text}")
        else:
            runs.append((join, text))
    return runs


def atomic_units(thinking: str, max_chars: int = 400, longest: int = LONGEST_UNIT) -> list[str]:
    """Paragraphs, with paragraphs longer than `max_chars` cut into sentences (then packed back up to it)."""
    return unit_layout(thinking, max_chars, longest)[0]


def unit_layout(thinking: str, max_chars: int = 400, longest: int = LONGEST_UNIT) -> tuple[list[str], list[str]]:
    """The atomic units and, for each, what joins it to the text before it: PARAGRAPH where it starts one,
    else the line break or space that stood there, so pruned text keeps the original's layout. No unit is
    longer than `longest` characters unless a single word is."""
    units: list[str] = []
    joins: list[str] = []
    limit = min(max_chars, longest)
    for paragraph in paragraphs(thinking):
        if len(paragraph) <= limit:
            units.append(paragraph)
            joins.append(PARAGRAPH)
            continue
        for index, (join, unit) in enumerate(_packed(_pieces(paragraph, longest), limit)):
            units.append(unit)
            joins.append(PARAGRAPH if index == 0 else join)
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
