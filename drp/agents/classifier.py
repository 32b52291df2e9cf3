"""Skill-classifier: one skill from the policy's taxonomy per step (`llm`), skills by patterns (`rules`),
or no labels (`none`). (The kinds are listed in drp/agents/kinds.py.)

The teacher's schema holds exactly as many skills as there are steps, each from the taxonomy, so a
schema-enforcing teacher cannot miscount or invent a skill."""

from __future__ import annotations

from drp.agents import rules
from drp.agents.asking import ask
from drp.agents.calls import deterministic
from drp.agents.context import RunContext
from drp.agents.state import TraceState
from drp.schemas import labels_schema


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
    steps = [dict(step) for step in state["steps"]]
    result, calls, error = await ask(
        ctx, "classifier", 1, labels_schema(len(steps), ctx.policy.taxonomy), lambda r: None,
        max_tokens=16 + 8 * len(steps), question=state["trace"]["question"], steps=list(enumerate(steps, start=1)),
    )
    if result is None:
        return {"calls": calls, "status": "failed", "reason": f"classifier_unusable: {error}"}
    for step, skill in zip(steps, result.skills):
        step["skill"] = skill
    return {"steps": steps, "calls": calls}


CLASSIFIERS = {"llm": _by_teacher, "rules": _by_rules, "none": _unlabelled}  # kind → agent
