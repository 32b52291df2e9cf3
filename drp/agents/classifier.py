"""Skill-classifier: one skill from the policy's taxonomy per step (`llm`), skills by patterns (`rules`),
or no labels (`none`). (The kinds are listed in drp/agents/kinds.py.)"""

from __future__ import annotations

import asyncio

from drp.agents import rules
from drp.agents.asking import ask
from drp.agents.calls import deterministic
from drp.agents.context import RunContext
from drp.agents.state import TraceState
from drp.agents.windows import Budget, neighbours, plan
from drp.prompting import render_messages
from drp.schemas import SkillLabels


def check_labels(labels: SkillLabels, last: int, taxonomy: list[str], first: int = 1) -> str | None:
    numbers = sorted(label.step for label in labels.labels)
    if numbers != list(range(first, last + 1)):
        return f"expected exactly one label for each step {first}..{last}, got steps {numbers}"
    known = {skill.lower() for skill in taxonomy}
    unknown = sorted({label.skill for label in labels.labels if label.skill.lower() not in known})
    if unknown:
        return f"unknown skills {unknown}; use only: {', '.join(taxonomy)}"
    return None


async def classify(state: TraceState, ctx: RunContext) -> dict:
    return await CLASSIFIERS[ctx.policy.agents["classifier"].kind](state, ctx)


async def _unlabelled(state: TraceState, ctx: RunContext) -> dict:
    steps = [dict(step) for step in state["steps"]]
    for step in steps:
        step.setdefault("skill", "unlabelled")
    return {"steps": steps}


async def _by_rules(state: TraceState, ctx: RunContext) -> dict:
    steps = rules.label_steps([dict(step) for step in state["steps"]])
    skills = [step["skill"] for step in steps]
    return {"steps": steps, "calls": [deterministic("classifier", 1, ctx, {"steps": len(steps)}, {"skills": skills})]}


async def _by_teacher(state: TraceState, ctx: RunContext) -> dict:
    # Long traces are labelled a window of steps at a time (as many labels as the reply cap holds, within the
    # teacher's context), each window shown its neighbouring steps for context; the calls go out together.
    steps = [dict(step) for step in state["steps"]]
    taxonomy, question, count = ctx.policy.taxonomy, state["trace"]["question"], len(steps)

    def variables(first: int, last: int) -> dict:
        before, after = neighbours(first, last, count, steps)
        return dict(question=question, steps=[(n, steps[n - 1]) for n in range(first, last + 1)], total_steps=count,
                    context_before=before, context_after=after)

    windows = plan(
        count, render=lambda first, last: render_messages(ctx.policy, "classifier", **variables(first, last)),
        reply_tokens=_reply_tokens, cap=ctx.policy.agents["classifier"].max_tokens, budget=Budget.of(ctx),
        item_text=lambda n: steps[n - 1]["text"],
    )
    answers = await asyncio.gather(*(
        ask(ctx, "classifier", 1, SkillLabels, lambda r, w=w: check_labels(r, w.last, taxonomy, w.first),
            reply_tokens=w.reply_tokens, messages=w.messages, **variables(w.first, w.last))
        for w in windows
    ))
    calls = [call for _, window_calls, _ in answers for call in window_calls]
    canonical = {skill.lower(): skill for skill in taxonomy}
    for result, _, error in answers:
        if result is None:
            return {"calls": calls, "status": "failed", "reason": f"classifier_unusable: {error}"}
        for label in result.labels:
            steps[label.step - 1]["skill"] = canonical[label.skill.lower()]
    return {"steps": steps, "calls": calls}


def _reply_tokens(first: int, last: int, size=None) -> int:
    """One `{"step": n, "skill": "..."}` per step."""
    return 20 * (last - first + 1) + 16


CLASSIFIERS = {"llm": _by_teacher, "rules": _by_rules, "none": _unlabelled}  # kind → agent
