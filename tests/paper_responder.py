"""A scripted 'teacher' for the paper's two calls, by reading the rendered prompts: a faithful echo (one step
per paragraph, the last one "clarify answer") and a pruning that drops hesitation and re-checks. Variants
break one thing on purpose: an invented echo, a bare assertion, actions that disagree with the path."""

from __future__ import annotations

import json
import re

from scripted_teacher import Text

HESITATION = ("Wait", "Hmm", "Alternatively")


def is_echo(request: dict) -> bool:
    return "Copy the text of every step exactly" in request["messages"][0]["content"]


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
    steps = [{"skill": skill, "text": text} for skill, text in [
        ("restate problem", "We need to find the answer to the question."),
        ("hesitation", "No hesitation was needed."),
        ("check", "The result was checked and is correct."),
        ("clarify answer", "So the answer follows."),
    ]]
    return Text(json.dumps({"steps": steps}))


def steps_of(request: dict) -> list[str]:
    """The steps' texts (a step may span several lines)."""
    listing = user(request).split("Steps:\n", 1)[1].split("\nThere are exactly", 1)[0]
    return [m.group(1).strip() for m in re.finditer(r"^Step \d+ \[[^\]]*\]: (.*?)(?=^Step \d+ \[|\Z)", listing, re.M | re.S)]


def compress(request: dict) -> Text:
    steps = steps_of(request)
    actions = ["DELETE" if s.startswith(HESITATION) else "KEEP" for s in steps]
    kept = [s for s, a in zip(steps, actions) if a == "KEEP"]
    return Text(json.dumps({"actions": actions, "pruned_reasoning": "\n\n".join(kept)}))


def bare_assertion(request: dict) -> Text:
    """Every step kept, but the path only asserts the result (the issue's accepted-but-not-derived case)."""
    steps = steps_of(request)
    answer = re.findall(r"\d+", steps[-1])[-1]
    path = (f"The reasoning is based on the given information and the standard arithmetic operations. "
            f"The result is {answer}. The answer is {answer}.")
    return Text(json.dumps({"actions": ["KEEP"] * len(steps), "pruned_reasoning": path}))


def paper(request: dict) -> Text:
    return echo(request) if is_echo(request) else compress(request)
