"""Skill-classifier: one skill from the policy's taxonomy per step (`llm`), skills by patterns (`rules`),
or no labels (`none`). (The kinds are listed in drp/agents/kinds.py.)"""

from __future__ import annotations

from drp.agents import rules
from drp.agents.asking import ask
from drp.agents.calls import deterministic
from drp.agents.context import RunContext
from drp.agents.state import TraceState
from drp.schemas import SkillLabels


def check_labels(labels: SkillLabels, step_count: int, taxonomy: list[str]) -> str | None:
    numbers = sorted(label.step for label in labels.labels)
    if numbers != list(range(1, step_count + 1)):
        return f"expected exactly one label for each step 1..{step_count}, got steps {numbers}"
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
    steps = [dict(step) for step in state["steps"]]
    taxonomy = ctx.policy.taxonomy
    result, calls, error = await ask(
        ctx, "classifier", 1, SkillLabels, lambda r: check_labels(r, len(steps), taxonomy),
        question=state["trace"]["question"], steps=list(enumerate(steps, start=1)),
    )
    if result is None:
        return {"calls": calls, "status": "failed", "reason": f"classifier_unusable: {error}"}
    canonical = {skill.lower(): skill for skill in taxonomy}
    for label in result.labels:
        steps[label.step - 1]["skill"] = canonical[label.skill.lower()]
    return {"steps": steps, "calls": calls}


CLASSIFIERS = {"llm": _by_teacher, "rules": _by_rules, "none": _unlabelled}  # kind → agent
