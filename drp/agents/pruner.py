"""Pruner: one action per step (KEEP / DELETE / COMPRESS / MERGE), then the pruned thinking is assembled
from the original text of kept steps and the rewrites. On a retry it sees the verifier's feedback.
Kinds (drp/agents/kinds.py): `llm-actions`, `paper`, `rules`, `identity`."""

from __future__ import annotations

from drp.agents import rules
from drp.agents.asking import ask
from drp.agents.calls import deterministic
from drp.agents.context import RunContext
from drp.agents.state import TraceState
from drp.schemas import PaperPrune, PrunePlan
from drp.text import join_steps

_PAPER_ACTIONS = {"KEEP": "KEEP", "DELETE": "DELETE", "SINGLE-STEP COMPRESS": "COMPRESS", "MULTI-STEP COMPRESS": "MERGE"}


def check_plan(plan: PrunePlan, step_count: int) -> str | None:
    numbers = sorted(a.step for a in plan.actions)
    if numbers != list(range(1, step_count + 1)):
        return f"expected exactly one action for each step 1..{step_count}, got steps {numbers}"
    by_step = sorted(plan.actions, key=lambda a: a.step)
    for action in by_step:
        if action.action == "COMPRESS" and not (action.text or "").strip():
            return f"step {action.step} is COMPRESS but has no text"
        if action.action == "MERGE" and action.group is None:
            return f"step {action.step} is MERGE but has no group"
    groups: dict[int, list[int]] = {}
    for action in by_step:
        if action.action == "MERGE":
            groups.setdefault(action.group, []).append(action.step)
    for group, members in groups.items():
        if members != list(range(members[0], members[-1] + 1)) or len(members) < 2:
            return f"MERGE group {group} must be two or more consecutive steps, got {members}"
        if not any((a.text or "").strip() for a in by_step if a.step in members):
            return f"MERGE group {group} has no merged text"
    return None


def apply_plan(steps: list[dict], actions: list[dict]) -> tuple[list[dict], str]:
    """Steps annotated with their actions, and the assembled pruned thinking."""
    annotated, pieces, merged_groups = [], [], set()
    by_step = {a["step"]: a for a in actions}
    for number, step in enumerate(steps, start=1):
        action = by_step[number]
        group = action.get("group")
        rewritten = action.get("text")
        if action["action"] == "MERGE":
            group_text = next((a.get("text") for a in actions if a.get("group") == group and a.get("text")), None)
            if group not in merged_groups:
                merged_groups.add(group)
                pieces.append(group_text)
            rewritten = group_text
        elif action["action"] == "KEEP":
            pieces.append(step["text"])
        elif action["action"] == "COMPRESS":
            pieces.append(rewritten)
        annotated.append({**step, "action": action["action"], "rewritten": rewritten, "merge_group": group})
    return annotated, join_steps(pieces)


async def prune(state: TraceState, ctx: RunContext) -> dict:
    return await PRUNERS[ctx.policy.agents["pruner"].kind](state, ctx, state.get("attempt", 0) + 1)


async def _by_rules(state: TraceState, ctx: RunContext, attempt: int) -> dict:
    steps = state["steps"]
    return _planned(ctx, steps, attempt, rules.plan(steps, state.get("original_answer"), ctx.policy.rules,
                                                     state["trace"]["question"]))


async def _keep_all(state: TraceState, ctx: RunContext, attempt: int) -> dict:
    steps = state["steps"]
    return _planned(ctx, steps, attempt, [{"step": n, "action": "KEEP", "text": None} for n in range(1, len(steps) + 1)])


def _planned(ctx: RunContext, steps: list[dict], attempt: int, actions: list[dict]) -> dict:
    """A deterministic plan applied and recorded like an agent call."""
    annotated, thinking = apply_plan(steps, actions)
    call = deterministic("pruner", attempt, ctx, {"steps": len(steps)}, {"actions": [a["action"] for a in actions]})
    return {"steps": annotated, "pruned_thinking": thinking, "attempt": attempt, "calls": [call]}


def _prompt_variables(state: TraceState, attempt: int) -> dict:
    return dict(
        question=state["trace"]["question"], steps=list(enumerate(state["steps"], start=1)),
        feedback=state.get("feedback"), attempt=attempt, original_answer=state.get("original_answer"),
    )


async def _by_paper_method(state: TraceState, ctx: RunContext, attempt: int) -> dict:
    steps = state["steps"]
    result, calls, error = await ask(
        ctx, "pruner", attempt, PaperPrune,
        lambda r: _check_paper(r, len(steps)), **_prompt_variables(state, attempt),
    )
    if result is None:
        return _failed(calls, error, attempt)
    annotated = [
        {**step, "action": _PAPER_ACTIONS[a.action], "rewritten": None, "merge_group": None}
        for step, a in zip(steps, sorted(result.actions, key=lambda a: a.step))
    ]
    return {"steps": annotated, "pruned_thinking": result.pruned_reasoning.strip(), "attempt": attempt, "calls": calls}


async def _by_teacher_actions(state: TraceState, ctx: RunContext, attempt: int) -> dict:
    steps = state["steps"]
    result, calls, error = await ask(
        ctx, "pruner", attempt, PrunePlan, lambda r: check_plan(r, len(steps)), **_prompt_variables(state, attempt),
    )
    if result is None:
        return _failed(calls, error, attempt)
    annotated, thinking = apply_plan(steps, [a.model_dump() for a in result.actions])
    return {"steps": annotated, "pruned_thinking": thinking, "attempt": attempt, "calls": calls}


def _check_paper(result: PaperPrune, step_count: int) -> str | None:
    numbers = sorted(a.step for a in result.actions)
    if numbers != list(range(1, step_count + 1)):
        return f"expected exactly one action for each step 1..{step_count}, got steps {numbers}"
    return None if result.pruned_reasoning.strip() else "pruned_reasoning is empty"


def _failed(calls: list[dict], error: str | None, attempt: int) -> dict:
    return {"calls": calls, "attempt": attempt, "status": "failed", "reason": f"pruner_unusable: {error}"}


PRUNERS = {"llm-actions": _by_teacher_actions, "paper": _by_paper_method, "rules": _by_rules, "identity": _keep_all}
