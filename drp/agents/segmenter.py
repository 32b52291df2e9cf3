"""Segmenter: splits the thinking into steps.

`llm-ranges` (default): the teacher sees numbered units and returns step boundaries as unit ranges, so the
original text is never re-typed. `echo` (the paper): the teacher re-types the trace as skill-labelled steps.
`rules`: one step per unit. (The kinds are listed in drp/agents/kinds.py.)"""

from __future__ import annotations

import asyncio

from drp.agents import rules
from drp.agents.asking import ask
from drp.agents.calls import deterministic
from drp.agents.context import RunContext
from drp.agents.state import TraceState
from drp.agents.windows import Budget, plan
from drp.prompting import render_messages
from drp.schemas import EchoSegmentation, Segmentation


def check_ranges(segmentation: Segmentation, last: int, first: int = 1) -> str | None:
    """Consecutive ranges covering units first..last exactly once, or a message saying what is wrong."""
    expected_start = first
    for number, step in enumerate(segmentation.steps, start=1):
        if step.start > step.end:
            return f"step {number} has start {step.start} after end {step.end}"
        if step.start < expected_start:
            return f"step {number} (units {step.start}-{step.end}) overlaps the previous step or starts before unit {first}"
        if step.start > expected_start:
            return f"units {expected_start}-{step.start - 1} belong to no step (gap before step {number})"
        if step.end > last:
            return f"step {number} ends at unit {step.end}, but the last unit is {last}"
        expected_start = step.end + 1
    if expected_start <= last:
        return f"units {expected_start}-{last} belong to no step"
    return None


async def segment(state: TraceState, ctx: RunContext) -> dict:
    return await SEGMENTERS[ctx.policy.agents["segmenter"].kind](state, ctx)


async def _by_rules(state: TraceState, ctx: RunContext) -> dict:
    units = state["units"]
    steps = rules.unit_steps(units)
    call = deterministic("segmenter", 1, ctx, {"units": len(units)}, {"steps": len(steps)})
    return {"steps": steps, "calls": [call]}


async def _by_echo(state: TraceState, ctx: RunContext) -> dict:
    result, calls, error = await ask(
        ctx, "segmenter", 1, EchoSegmentation,
        lambda r: None if r.steps else "no steps returned",
        question=state["trace"]["question"], thinking=state["thinking"],
    )
    if result is None:
        return _failed(calls, error)
    steps = [{"unit_start": None, "unit_end": None, "text": s.text, "skill": s.skill} for s in result.steps]
    return {"steps": steps, "calls": calls}


async def _by_teacher_ranges(state: TraceState, ctx: RunContext) -> dict:
    # Long traces are segmented a window of units at a time (at most units.per_call, and within the teacher's
    # context), so every list stays short enough for small teachers; units keep their global numbers, no step
    # crosses a window boundary, and the windows' calls go out together.
    units, question = state["units"], state["trace"]["question"]

    def variables(first: int, last: int) -> dict:
        return dict(question=question, units=[(n, units[n - 1]) for n in range(first, last + 1)],
                    total_units=len(units))

    windows = plan(
        len(units), render=lambda first, last: render_messages(ctx.policy, "segmenter", **variables(first, last)),
        reply_tokens=_reply_tokens, cap=ctx.policy.agents["segmenter"].max_tokens, budget=Budget.of(ctx),
        item_text=lambda n: units[n - 1], max_items=ctx.policy.units.per_call,
    )
    answers = await asyncio.gather(*(
        ask(ctx, "segmenter", 1, Segmentation, lambda r, w=w: check_ranges(r, w.last, w.first),
            reply_tokens=w.reply_tokens, messages=w.messages, **variables(w.first, w.last))
        for w in windows
    ))
    steps, calls = [], []
    for result, window_calls, error in answers:
        calls.extend(window_calls)
        if result is None:
            return _failed(calls, error)
        steps.extend(
            {"unit_start": s.start, "unit_end": s.end, "text": "\n\n".join(units[s.start - 1 : s.end])}
            for s in result.steps
        )
    return {"steps": steps, "calls": calls}


def _reply_tokens(first: int, last: int, size=None) -> int:
    """At most one `{"start": n, "end": m}` per unit."""
    return 16 * (last - first + 1) + 16


def _failed(calls: list[dict], error: str | None) -> dict:
    return {"calls": calls, "status": "failed", "reason": f"segmenter_unusable: {error}"}


SEGMENTERS = {"llm-ranges": _by_teacher_ranges, "echo": _by_echo, "rules": _by_rules}  # kind → agent
