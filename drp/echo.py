"""Checks for policies whose teacher re-types the reasoning (the paper's echo segmentation).

An echo is only useful if it is the original: a teacher that invents steps, or skips half the trace, hands the
pruner a different reasoning than the one the student wrote. `check_echo` aligns the echoed steps with the
original word by word and measures both directions: how much of the original the echo reproduces (coverage)
and how much of each echoed step comes from the original (faithfulness). It also maps each step back to the
span of the original it copies, so `drp diff` can show the real text.

`action_agreement` checks the paper's second call against itself: a step marked KEEP must be in the pruned
path, a step marked DELETE must not be."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher

_WORD = re.compile(r"\S+")
_EDGE = re.compile(r"^[^\w$%]+|[^\w$%]+$")


@dataclass
class EchoCheck:
    coverage: float  # share of the original's words the echo reproduces, in order
    faithfulness: list[float]  # per echoed step: share of its words found in the original, in order
    spans: list[tuple[int, int] | None] = field(default_factory=list)  # per step: its span of the original

    def unfaithful(self, threshold: float) -> list[int]:
        """1-based numbers of the steps whose text is mostly not in the original."""
        return [n for n, share in enumerate(self.faithfulness, start=1) if share < threshold]

    def summary(self) -> dict:
        return {"coverage": round(self.coverage, 4), "faithfulness": [round(f, 4) for f in self.faithfulness]}


def check_echo(original: str, steps: list[str]) -> EchoCheck:
    words, offsets = _words(original)
    echo, owner = [], []
    for number, text in enumerate(steps):
        step_words, _ = _words(text)
        echo.extend(step_words)
        owner.extend([number] * len(step_words))
    matched_original = [False] * len(words)
    matched_echo = [False] * len(echo)
    first = [None] * len(steps)
    last = [None] * len(steps)
    for block in SequenceMatcher(None, words, echo, autojunk=False).get_matching_blocks():
        for i in range(block.size):
            o, e = block.a + i, block.b + i
            matched_original[o] = matched_echo[e] = True
            step = owner[e]
            first[step] = o if first[step] is None else first[step]
            last[step] = o
    faithfulness = []
    for number in range(len(steps)):
        mine = [matched_echo[e] for e in range(len(echo)) if owner[e] == number]
        faithfulness.append(sum(mine) / len(mine) if mine else 0.0)
    spans = [(offsets[start][0], offsets[end][1]) if start is not None else None for start, end in zip(first, last)]
    coverage = sum(matched_original) / len(words) if words else 0.0
    return EchoCheck(coverage, faithfulness, spans)


def action_agreement(
    step_texts: list[str], actions: list[str], pruned: str, keep_at_least: float = 0.7, delete_at_most: float = 0.5
) -> list[str]:
    """Steps whose action the pruned text contradicts, as messages (empty when they all agree).
    COMPRESS / MERGE steps are rewrites: any overlap is consistent with them."""
    pruned_words, _ = _words(pruned)
    problems = []
    for number, (text, action) in enumerate(zip(step_texts, actions), start=1):
        share = _contained(_words(text)[0], pruned_words)
        if action == "KEEP" and share < keep_at_least:
            problems.append(f"step {number} is KEEP but only {share:.0%} of it is in the pruned reasoning")
        elif action == "DELETE" and share > delete_at_most:
            problems.append(f"step {number} is DELETE but {share:.0%} of it is still in the pruned reasoning")
    return problems


def _contained(part: list[str], whole: list[str], min_run: int = 3) -> float:
    """Share of `part`'s words found in `whole` in runs of at least `min_run` words (short texts: any run)."""
    if not part:
        return 1.0
    run = min(min_run, len(part))
    blocks = SequenceMatcher(None, part, whole, autojunk=False).get_matching_blocks()
    return sum(b.size for b in blocks if b.size >= run) / len(part)


def _words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Normalised words (case, edge punctuation and LaTeX escapes dropped) and their character spans."""
    words, offsets = [], []
    for match in _WORD.finditer(text or ""):
        word = _EDGE.sub("", match.group().replace("\\", "").lower())
        if word:
            words.append(word)
            offsets.append(match.span())
    return words, offsets
