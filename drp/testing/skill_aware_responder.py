"""A scripted 'teacher' that answers the skill-aware policy's three agents sensibly, by reading the
rendered prompts: one step per unit, skills by the rules classifier, hesitation/checks deleted.
Hooks let a test break one agent on purpose (bad JSON, gaps, answer-changing pruning)."""

from __future__ import annotations

import json
import re

from drp.agents.rules import classify
from drp.testing.scripted_teacher import Text


def agent_of(request: dict) -> str:
    system = request["messages"][0]["content"]
    if "split a model's reasoning into steps" in system:
        return "segmenter"
    if "label each step" in system:
        return "classifier"
    return "pruner"


def last_user(request: dict) -> str:
    return [m for m in request["messages"] if m["role"] == "user"][-1]["content"]


def first_user(request: dict) -> str:
    return [m for m in request["messages"] if m["role"] == "user"][0]["content"]


def units_in(request: dict) -> list[str]:
    return re.findall(r"^\[(\d+)\] (.*)$", first_user(request), re.M)


def steps_in(request: dict) -> list[tuple[int, str, str]]:
    """(number, skill or '', text) of each 'Step n [skill]: text' line."""
    found = re.findall(r"^Step (\d+)(?: \[([^\];]*)(?:;[^\]]*)?\])?: (.*)$", first_user(request), re.M)
    return [(int(n), skill, text) for n, skill, text in found]


def needed_in(request: dict) -> set[int]:
    """Steps the prompt marks as needed (they compute the answer or a number it depends on)."""
    return {int(n) for n in re.findall(r"^Step (\d+) \[[^\]]*; needed:", first_user(request), re.M)}


def segment(request: dict) -> str:
    units = units_in(request)
    return json.dumps({"starts": [int(n) for n, _ in units]})


def label(request: dict) -> str:
    steps = steps_in(request)
    skills = []
    for index, (_, _, text) in enumerate(steps):
        skill = classify(text, index, len(steps))
        skills.append("reasoning" if skill == "setup" else skill)
    return json.dumps({"skills": skills})


def prune(request: dict, delete_everything_after: int | None = None) -> str:
    """Deletes hesitation, alternatives and restatements; with `delete_everything_after`, also every later step
    the prompt does not mark as needed (a teacher that cuts too much, but obeys the schema)."""
    needed = needed_in(request)
    delete = []
    for number, skill, _ in steps_in(request):
        drop = skill in ("hesitation", "alternative", "restate_problem") or (
            delete_everything_after is not None and number > delete_everything_after
        )
        if drop and number not in needed:
            delete.append(number)
    if len(delete) == len(steps_in(request)) and "The reasoning has" not in first_user(request):
        delete = delete[1:]  # the schema keeps one step of a whole thinking: the first stays
    return json.dumps({"delete": delete, "compress": []})


def sensible(request: dict) -> Text:
    agent = agent_of(request)
    content = {"segmenter": segment, "classifier": label, "pruner": prune}[agent](request)
    return Text(content)


def answer_losing(request: dict) -> Text:
    """Sensible, except that the pruner deletes everything after step 1 (so the answer is lost)."""
    if agent_of(request) == "pruner":
        return Text(prune(request, delete_everything_after=1))
    return sensible(request)
