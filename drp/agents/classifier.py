"""Skill-classifier: one skill from the policy's taxonomy per step (`llm`), skills by patterns (`rules`),
or no labels (`none`). (The kinds are declared in drp/agent_kinds.py.)

The teacher's schema holds exactly as many skills as there are steps, each from the taxonomy, so a
schema-enforcing teacher cannot miscount or invent a skill."""

from __future__ import annotations

from drp.agent_kinds import agent_for, implements
from drp.agents import rules
from drp.agents.calls import deterministic
from drp.agents.state import TraceState
from drp.agents.windowed import ask_windows, plan_windows
from drp.agents.windows import neighbours
from drp.outcomes import CLASSIFIER_UNUSABLE, FAILED, reason
from drp.run_context import RunContext
from drp.schemas import labels_schema


async def classify(state: TraceState, ctx: RunContext) -> dict:
    return await agent_for("classifier", ctx.policy.agents["classifier"].kind)(state, ctx)


@implements("classifier", "none")
async def _unlabelled(state: TraceState, ctx: RunContext) -> dict:
    steps = [dict(step) for step in state["steps"]]
    for step in steps:
        step.setdefault("skill", "unlabelled")
    return {"steps": steps}


@implements("classifier", "rules")
async def _by_rules(state: TraceState, ctx: RunContext) -> dict:
    steps = rules.label_steps([dict(step) for step in state["steps"]])
    skills = [step["skill"] for step in steps]
    return {"steps": steps, "calls": [deterministic("classifier", 1, ctx, {"steps": len(steps)}, {"skills": skills})]}


@implements("classifier", "llm")
async def _by_teacher(state: TraceState, ctx: RunContext) -> dict:
    # Long traces are labelled a window of steps at a time (as many labels as the reply cap holds, within the
    # teacher's context), each window shown its neighbouring steps for context; the calls go out together.
    steps = [dict(step) for step in state["steps"]]
    taxonomy, question, count = ctx.policy.taxonomy, state["trace"]["question"], len(steps)

    def variables(first: int, last: int) -> dict:
        before, after = neighbours(first, last, count, steps)
        return dict(
            question=question,
            steps=[(n, steps[n - 1]) for n in range(first, last + 1)],
            total_steps=count,
            context_before=before,
            context_after=after,
        )

    windows = plan_windows(ctx, "classifier", count, variables, _reply_tokens, item_text=lambda n: steps[n - 1]["text"])
    # Each window's schema holds exactly as many skills as the window has steps.
    answers = await ask_windows(
        ctx,
        "classifier",
        1,
        windows,
        lambda w: labels_schema(w.last - w.first + 1, taxonomy),
        lambda r: None,
        lambda w: variables(w.first, w.last),
    )
    calls = [call for _, window_calls, _ in answers for call in window_calls]
    for window, (result, _, error) in zip(windows, answers):
        if result is None:
            return {"calls": calls, "status": FAILED, "reason": reason(CLASSIFIER_UNUSABLE, error)}
        for step, skill in zip(steps[window.first - 1 : window.last], result.skills):
            step["skill"] = skill
    return {"steps": steps, "calls": calls}


def _reply_tokens(first: int, last: int, size=None) -> int:
    """One quoted skill per step."""
    return 16 + 8 * (last - first + 1)
