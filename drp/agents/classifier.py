"""Skill-classifier: one skill from the policy's taxonomy per step."""

from __future__ import annotations

from drp.agents import rules
from drp.agents.asking import ask
from drp.agents.calls import deterministic
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


async def classify(state: dict, ctx) -> dict:
    kind = ctx.policy.agents["classifier"].kind
    steps = [dict(step) for step in state["steps"]]
    if kind == "none":
        for step in steps:
            step.setdefault("skill", "unlabelled")
        return {"steps": steps}
    if kind == "rules":
        steps = rules.label_steps(steps)
        skills = [step["skill"] for step in steps]
        return {"steps": steps, "calls": [deterministic("classifier", 1, ctx, {"steps": len(steps)}, {"skills": skills})]}
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
