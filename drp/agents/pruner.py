"""Pruner: one action per step (KEEP / DELETE / COMPRESS / MERGE), then the pruned thinking is assembled
from the original text of kept steps and the rewrites. On a retry it sees the verifier's feedback.
Kinds (drp/agents/kinds.py): `llm-actions`, `paper`, `rules`, `identity`."""

from __future__ import annotations

import asyncio

from drp.agents import rules
from drp.agents.asking import ask
from drp.agents.calls import deterministic
from drp.agents.context import RunContext
from drp.agents.state import TraceState
from drp.agents.windows import Budget, neighbours, plan
from drp.prompting import render_messages
from drp.schemas import PaperPrune, PrunePlan
from drp.text import join_steps

_PAPER_ACTIONS = {"KEEP": "KEEP", "DELETE": "DELETE", "SINGLE-STEP COMPRESS": "COMPRESS", "MULTI-STEP COMPRESS": "MERGE"}


def check_plan(plan: PrunePlan, last: int, first: int = 1) -> str | None:
    numbers = sorted(a.step for a in plan.actions)
    if numbers != list(range(first, last + 1)):
        return f"expected exactly one action for each step {first}..{last}, got steps {numbers}"
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
    steps = state["steps"]
    return dict(
        question=state["trace"]["question"], steps=list(enumerate(steps, start=1)), total_steps=len(steps),
        context_before=[], context_after=[], feedback=state.get("feedback"), attempt=attempt,
        original_answer=state.get("original_answer"),
    )


def _window_variables(state: TraceState, first: int, last: int, feedback: str | None, attempt: int) -> dict:
    steps = state["steps"]
    before, after = neighbours(first, last, len(steps), steps)
    return dict(
        question=state["trace"]["question"], steps=[(n, steps[n - 1]) for n in range(first, last + 1)],
        total_steps=len(steps), context_before=before, context_after=after, feedback=feedback, attempt=attempt,
        original_answer=state.get("original_answer"),
    )


FEEDBACK_TOKENS = 256  # room kept in each window's prompt for a retry's feedback (the verifier's stays under it)


def _plan_windows(state: TraceState, ctx: RunContext, attempt: int) -> list:
    steps = state["steps"]
    return plan(
        len(steps),
        render=lambda first, last: render_messages(ctx.policy, "pruner",
                                                   **_window_variables(state, first, last, None, attempt)),
        reply_tokens=_reply_tokens, cap=ctx.policy.agents["pruner"].max_tokens, budget=Budget.of(ctx),
        item_text=lambda n: steps[n - 1]["text"], reserve=FEEDBACK_TOKENS,
    )


def _reply_tokens(first: int, last: int, size) -> int:
    """An action per step, and at most every step rewritten at its own length."""
    return sum(24 + size(n) for n in range(first, last + 1)) + 16


def _to_redo(state: TraceState, windows: list[dict]) -> list[tuple[int, str | None]]:
    """(window, feedback) for each window this attempt prunes: all of them at first, then those the verifier
    blamed (with what it said about each), or all with its message when it blamed none in particular."""
    blamed = (state.get("verdict") or {}).get("windows") if state.get("attempt") else None
    if not blamed:
        return [(index, state.get("feedback")) for index in range(len(windows))]
    return [(entry["window"], entry["feedback"]) for entry in blamed]


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
    # A long trace is pruned a window of steps at a time (each call within the teacher's context, its
    # neighbouring steps shown as context); on a retry only the windows the verifier blamed are pruned again.
    steps = state["steps"]
    rendered: dict[int, list[dict]] = {}  # first attempt: the prompts planning rendered
    if state.get("prune_windows"):
        windows = [dict(window) for window in state["prune_windows"]]
    else:
        planned = _plan_windows(state, ctx, attempt)
        windows = [{"first": w.first, "last": w.last, "reply_tokens": w.reply_tokens} for w in planned]
        rendered = {index: w.messages for index, w in enumerate(planned) if not state.get("feedback")}
    todo = _to_redo(state, windows)
    answers = await asyncio.gather(*(
        ask(ctx, "pruner", attempt, PrunePlan,
            lambda r, first=windows[index]["first"], last=windows[index]["last"]: check_plan(r, last, first),
            reply_tokens=windows[index]["reply_tokens"], messages=rendered.get(index),
            **_window_variables(state, windows[index]["first"], windows[index]["last"], feedback, attempt))
        for index, feedback in todo
    ))
    calls = [call for _, window_calls, _ in answers for call in window_calls]
    annotated = [dict(step) for step in steps]
    for (index, _), (result, _, error) in zip(todo, answers):
        if result is None:
            return _failed(calls, error, attempt)
        window = windows[index]
        first, last = window["first"], window["last"]
        local = [{**a.model_dump(), "step": a.step - first + 1} for a in result.actions]
        annotated[first - 1 : last], window["thinking"] = apply_plan(steps[first - 1 : last], local)
    _number_merge_groups(annotated, windows)
    thinking = join_steps([window["thinking"] for window in windows])
    return {"steps": annotated, "pruned_thinking": thinking, "attempt": attempt, "calls": calls,
            "prune_windows": windows}


def _number_merge_groups(steps: list[dict], windows: list[dict]) -> None:
    """Merge groups are numbered per window by the teacher: renumber them 1, 2, … across the trace."""
    if len(windows) < 2:
        return
    window_of = {n: index for index, w in enumerate(windows) for n in range(w["first"], w["last"] + 1)}
    numbers: dict[tuple, int] = {}
    for number, step in enumerate(steps, start=1):
        if step.get("merge_group") is not None:
            key = (window_of[number], step["merge_group"])
            step["merge_group"] = numbers.setdefault(key, len(numbers) + 1)


def _check_paper(result: PaperPrune, step_count: int) -> str | None:
    numbers = sorted(a.step for a in result.actions)
    if numbers != list(range(1, step_count + 1)):
        return f"expected exactly one action for each step 1..{step_count}, got steps {numbers}"
    return None if result.pruned_reasoning.strip() else "pruned_reasoning is empty"


def _failed(calls: list[dict], error: str | None, attempt: int) -> dict:
    return {"calls": calls, "attempt": attempt, "status": "failed", "reason": f"pruner_unusable: {error}"}


PRUNERS = {"llm-actions": _by_teacher_actions, "paper": _by_paper_method, "rules": _by_rules, "identity": _keep_all}
