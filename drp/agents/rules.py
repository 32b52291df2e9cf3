"""The `rules` policy: deterministic skill tagging and pruning, no LLM. The offline default and an honest
baseline: it only deletes whole steps and filler sentences, so it can never invent a number."""

from __future__ import annotations

import re

from drp.answers import equivalent, numbers_in
from drp.derivation import needed_passages, writes_number
from drp.policy import RulesSettings
from drp.text import PARAGRAPH, sentences

_PATTERNS = [  # checked in order; the first match names the skill
    (
        "final_answer",
        re.compile(r"\\boxed|\*\*final answer|\b(?:the|my|final) answer (?:is|should be|would be)\b", re.I),
    ),
    (
        "alternative",
        re.compile(
            r"^(?:alternatively|another (?:way|approach|method)|"
            r"let me (?:try|approach) (?:it |this )?(?:another|a different))",
            re.I,
        ),
    ),
    (
        "check",
        re.compile(
            r"\b(?:double[- ]check|verify|verif(?:y|ied|ication)|make sure|confirm|re-?examine|re-?check|"
            r"sanity check|check (?:again|my|that|if|the))\b",
            re.I,
        ),
    ),
    (
        "hesitation",
        re.compile(r"^(?:wait|hmm+|hold on|but wait|oh|ah|actually,? (?:wait|hold)|no,? wait|let me think)\b", re.I),
    ),
    (
        "restate_problem",
        re.compile(
            r"^(?:okay|ok|alright|so|let's see|let me see)?[,.]?\s*(?:so\s+)?"
            r"(?:i need to|i have to|let me (?:try to )?(?:figure|understand|read|solve)|"
            r"let's (?:try to )?(?:figure|see|solve)|"
            r"the problem (?:says|is|states)|the question (?:is|says|asks)|we have|first, let me understand)",
            re.I,
        ),
    ),
    ("arithmetic", re.compile(r"\d\s*(?:[-+*/×÷=]|times|plus|minus|divided by|multiplied by)\s*\d", re.I)),
]
_FILLER = re.compile(
    r"^(?:okay|ok|alright|hmm+|wait|so|well|right|yeah|yes|let me think|let me see|let's see|i think|"
    r"that makes sense|that seems right|got it)\b[^0-9]*$",
    re.I,
)
_LEADING_FILLER = re.compile(r"^(?:okay|ok|alright|hmm+|well|so),\s+(?:so\s+)?", re.I)


def classify(text: str, index: int, total: int) -> str:
    """Skill of one step; the first step that restates the problem is `restate_problem` by position too."""
    first_line = text.lstrip()[:200]
    for skill, pattern in _PATTERNS:
        haystack = first_line if skill in ("alternative", "hesitation", "restate_problem") else text
        if pattern.search(haystack):
            if skill == "restate_problem" and index > 1:
                continue  # later "so we have…" is ordinary set-up
            return skill
    return "setup" if index == 0 else "reasoning"


def unit_steps(units: list[str], joins: list[str] | None = None) -> list[dict]:
    """One step per unit: the rule-based segmentation."""
    joins = joins or [PARAGRAPH] * len(units)
    return [
        {"unit_start": i, "unit_end": i, "text": unit, "joined_by": join}
        for i, (unit, join) in enumerate(zip(units, joins), start=1)
    ]


def label_steps(steps: list[dict]) -> list[dict]:
    """The steps, each with its rule-based skill."""
    return [{**step, "skill": classify(step["text"], index, len(steps))} for index, step in enumerate(steps)]


def plan(steps: list[dict], original_answer: str | None, settings: RulesSettings, question: str = "") -> list[dict]:
    """One action per step: the reasoning up to the first step that reaches the answer is kept (minus
    restatements, number-free hesitation and filler); after it, only one concluding step survives.
    A restatement is only dropped when every number in it comes from the question (it derives nothing)."""
    given = numbers_in(question)
    needed = _needed_steps(steps, original_answer, question)
    reach = _answer_step(needed, original_answer)
    if reach is None:
        reach = _first_answer_step(steps, original_answer)
    conclusion = _concluding_step(steps, reach, original_answer)
    actions = []
    for index, step in enumerate(steps):
        text, skill = step["text"], step["skill"]
        action, rewritten = "KEEP", None
        if reach is not None and index > reach and index != conclusion:
            after = {"check": settings.drop_checks_after_answer, "alternative": settings.drop_alternatives_after_answer}
            if after.get(skill, True):
                action = "DELETE"
        elif index != reach and index != conclusion and index not in needed:
            if skill == "restate_problem" and settings.drop_restatement and numbers_in(text) <= given:
                action = "DELETE"
            elif skill == "hesitation" and settings.drop_hesitation and not numbers_in(text):
                action = "DELETE"
        if action == "KEEP" and settings.strip_filler:
            shorter = strip_filler(text)
            if shorter != text:
                action, rewritten = ("COMPRESS", shorter) if shorter else ("DELETE", None)
        actions.append({"step": index + 1, "action": action, "text": rewritten})
    return actions


def strip_filler(text: str) -> str:
    """Drop sentences that carry no content (no digits, only hedging) and leading 'Okay, so'."""
    # "twice would give you four" carries numbers too, in words
    kept = [s for s in sentences(text) if not _FILLER.match(s.strip()) or writes_number(s)]
    cleaned = " ".join(kept) if kept else ""
    cleaned = _LEADING_FILLER.sub("", cleaned)
    return cleaned[:1].upper() + cleaned[1:] if cleaned else cleaned


def _needed_steps(steps: list[dict], answer: str | None, question: str) -> dict[int, tuple[str, list[str]]]:
    """0-based steps that hold the answer's computation (or write a number it uses), when the text derives it."""
    if answer is None:
        return {}
    texts = [step["text"] for step in steps]
    found = needed_passages(texts, "\n\n".join(texts), answer, question)
    return {number - 1: note for number, note in found.items()}


def _answer_step(needed: dict[int, tuple[str, list[str]]], answer: str | None) -> int | None:
    """The step that computes the answer itself (not one that merely writes its number, "There are 4 ...")."""
    for index, (note, values) in sorted(needed.items()):
        if note.startswith("computes") and equivalent(answer, values[0]):
            return index
    return None


def _first_answer_step(steps: list[dict], answer: str | None) -> int | None:
    """The first step that derives the answer (`= 16`, `is 16`, …), not one that merely mentions the number."""
    if answer is None:
        return None
    derived = re.compile(
        r"(?:=|\bis|\bare|equals?|gives?|get|gets|makes?|leaves?|total of|answer)\s*(?:\\\(|\$|\\boxed\{)?\s*"
        + re.escape(answer.replace(",", ""))
        # …but not "is 24 minus 4": an operand is not a result.
        + r"(?!\d)(?!\.\d)(?!\s*(?:[-+*/×÷^]|minus|plus|times|divided|multiplied|over)\b)",
        re.I,
    )
    for index, step in enumerate(steps):
        if derived.search(step["text"].replace(",", "")):
            return index
    for index, step in enumerate(steps):
        if step["skill"] == "final_answer" and _mentions(step["text"], answer):
            return index
    return None


def _concluding_step(steps: list[dict], reach: int | None, answer: str | None) -> int | None:
    """The last step that states the answer as a conclusion (final_answer skill), else the reaching step."""
    if reach is None:
        return None
    for index in range(len(steps) - 1, reach, -1):
        if steps[index]["skill"] == "final_answer" and _mentions(steps[index]["text"], answer):
            return index
    return reach


def _mentions(text: str, answer: str) -> bool:
    found = numbers_in(text)
    if answer.replace(",", "") in found:
        return True
    return any(equivalent(answer, number) for number in found) if len(found) < 40 else False


_INTRO = re.compile(
    r"^(?:\*\*solution:?\*\*:?|"
    r"(?:let'?s (?:solve|calculate|break|determine|find|work)|to (?:solve|find|determine|calculate))\b[^0-9=]*)$",
    re.I,
)


def shorten_answer_section(text: str, question: str) -> str:
    """When the derivation lives after </think>, keep it but drop what only restates: introductory lines
    and lines whose every number is given in the question and that compute nothing."""
    given = numbers_in(question)
    kept = []
    for line in text.splitlines():
        stripped = line.strip()
        numbers = numbers_in(stripped)
        restates = numbers and numbers <= given and "=" not in stripped and "\\boxed" not in stripped
        if _INTRO.match(stripped) or restates:
            continue
        kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
