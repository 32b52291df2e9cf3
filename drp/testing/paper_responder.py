"""A scripted 'teacher' for the paper's two calls, by reading the rendered prompts: a faithful echo (one step
per paragraph, the last one "clarify answer") and a pruning that drops hesitation and re-checks, in free text for
`paper` and in JSON for `paper-verified`. Variants break one thing on purpose: an invented echo, a bare
assertion, actions that disagree with the path."""

from __future__ import annotations

import json
import re

from drp.testing.scripted_teacher import Text

HESITATION = ("Wait", "Hmm", "Alternatively")


def is_echo(request: dict) -> bool:
    return "Copy the text of every step exactly" in request["messages"][0]["content"]


def is_text_echo(request: dict) -> bool:
    return "Break it into the consecutive steps" in request["messages"][0]["content"]


def user(request: dict) -> str:
    return [m for m in request["messages"] if m["role"] == "user"][-1]["content"]


def echo(request: dict) -> Text:
    thinking = user(request).split("Reasoning:\n", 1)[1].split("\n\nYour previous reply", 1)[0]
    paragraphs = [p.strip() for p in thinking.split("\n\n") if p.strip()]
    steps = [{"skill": "arithmetic on the given amounts", "text": p} for p in paragraphs]
    steps[-1]["skill"] = "clarify answer"
    return Text(json.dumps({"steps": steps}))


def invented_echo(request: dict) -> Text:
    """One step per label, in a fixed order, mostly not the trace's text (what the issue saw)."""
    steps = [
        {"skill": skill, "text": text}
        for skill, text in [
            ("restate problem", "We need to find the answer to the question."),
            ("hesitation", "No hesitation was needed."),
            ("check", "The result was checked and is correct."),
            ("clarify answer", "So the answer follows."),
        ]
    ]
    return Text(json.dumps({"steps": steps}))


def steps_of(request: dict) -> list[str]:
    """The steps' texts (a step may span several lines)."""
    listing = user(request).split("Steps:\n", 1)[1].split("\nThere are exactly", 1)[0].rstrip()
    return [
        m.group(1).strip() for m in re.finditer(r"^Step \d+ \[[^\]]*\]: (.*?)(?=^Step \d+ \[|\Z)", listing, re.M | re.S)
    ]


def compress(request: dict) -> Text:
    steps = steps_of(request)
    actions = ["DELETE" if s.startswith(HESITATION) else "KEEP" for s in steps]
    kept = [s for s, a in zip(steps, actions) if a == "KEEP"]
    return Text(json.dumps({"actions": actions, "pruned_reasoning": "\n\n".join(kept)}))


def bare_assertion(request: dict) -> Text:
    """Every step kept, but the path only asserts the result (the issue's accepted-but-not-derived case)."""
    steps = steps_of(request)
    answer = re.findall(r"\d+", steps[-1])[-1]
    path = (
        f"The reasoning is based on the given information and the standard arithmetic operations. "
        f"The result is {answer}. The answer is {answer}."
    )
    return Text(json.dumps({"actions": ["KEEP"] * len(steps), "pruned_reasoning": path}))


def text_echo(request: dict, steps: list[tuple[str, str]] | None = None) -> Text:
    """The free-text echo: `Step N [skill]: text`, one block per paragraph (or the steps given)."""
    if steps is None:
        thinking = user(request).split("Reasoning:\n", 1)[1]
        paragraphs = [p.strip() for p in thinking.split("\n\n") if p.strip()]
        steps = [("arithmetic on the given amounts", p) for p in paragraphs[:-1]] + [("clarify answer", paragraphs[-1])]
    return Text(
        "Here are the steps.\n\n" + "\n".join(f"Step {n} [{skill}]: {text}" for n, (skill, text) in enumerate(steps, 1))
    )


def text_compress(request: dict, *, drop_last_action: bool = False, closing: bool = True) -> Text:
    """Free text: each step's action and resulting text, the separator, then the kept steps as one path closed
    by the paper's answer line."""
    steps = steps_of(request)
    actions = ["DELETE" if s.startswith(HESITATION) else "KEEP" for s in steps]
    blocks = [f"Step {n} [{a}]: {s if a == 'KEEP' else ''}".rstrip() for n, (s, a) in enumerate(zip(steps, actions), 1)]
    if drop_last_action:
        blocks = blocks[:-1]
    kept = [s for s, a in zip(steps, actions) if a == "KEEP"]
    numbers = re.findall(r"\d+", " ".join(kept))
    path = " ".join(kept) + (f" The answer is {numbers[-1] if numbers else 0}." if closing else "")
    return Text("\n".join(blocks) + "\n\n=== PRUNED REASONING ===\n" + path)


def paper(request: dict) -> Text:
    if is_text_echo(request):
        return text_echo(request)
    if "=== PRUNED REASONING ===" in request["messages"][0]["content"]:
        return text_compress(request)
    return echo(request) if is_echo(request) else compress(request)
