"""Segmenter: splits the thinking into steps. (The kinds are declared in drp/agent_kinds.py.)

`llm-ranges` (default): the teacher sees numbered units and names the units where steps start, so the original
text is never re-typed and every unit lands in exactly one step. `echo` (the paper): the teacher re-types the
trace as skill-labelled steps; the echo is aligned with the original word by word, its coverage recorded, and
an echo that is not the original is retried (where the policy retries), then rejected. `rules`: one step per
unit."""

from __future__ import annotations

from drp.agent_kinds import agent_for, implements
from drp.agents import rules
from drp.agents.asking import ask
from drp.agents.calls import deterministic
from drp.agents.state import TraceState
from drp.agents.windowed import ask_windows, plan_windows
from drp.echo import EchoCheck, check_echo
from drp.outcomes import FAILED, REJECTED, SEGMENTER_UNUSABLE, UNFAITHFUL_ECHO, reason
from drp.paper_text import EchoText
from drp.run_context import RunContext
from drp.schemas import echo_schema, segmentation_schema, steps_from_starts
from drp.text import PARAGRAPH, join_units, paragraphs, sentences


async def segment(state: TraceState, ctx: RunContext) -> dict:
    return await agent_for("segmenter", ctx.policy.agents["segmenter"].kind)(state, ctx)


def _joins(state: TraceState) -> list[str]:
    return state.get("unit_joins") or [PARAGRAPH] * len(state["units"])


@implements("segmenter", "rules")
async def _by_rules(state: TraceState, ctx: RunContext) -> dict:
    units = state["units"]
    steps = rules.unit_steps(units, _joins(state))
    call = deterministic("segmenter", 1, ctx, {"units": len(units)}, {"steps": len(steps)})
    return {"steps": steps, "calls": [call]}


@implements("segmenter", "llm-ranges")
async def _by_teacher_ranges(state: TraceState, ctx: RunContext) -> dict:
    # Long traces are segmented a window of units at a time (at most units.per_call, and within the teacher's
    # context), so every list stays short enough for small teachers; units keep their global numbers, no step
    # crosses a window boundary, and the windows' calls go out together.
    units, joins, question = state["units"], _joins(state), state["trace"]["question"]
    if len(units) < ctx.policy.units.one_step_each_below:
        steps = rules.unit_steps(units, joins)
        call = deterministic(
            "segmenter",
            1,
            ctx,
            {"units": len(units)},
            {"steps": len(steps), "why": "fewer units than units.one_step_each_below: one step each"},
        )
        return {"steps": steps, "calls": [call]}

    def variables(first: int, last: int) -> dict:
        return dict(
            question=question,
            units=[(n, units[n - 1]) for n in range(first, last + 1)],
            total_units=len(units),
            first=first,
            last=last,
        )

    windows = plan_windows(
        ctx,
        "segmenter",
        len(units),
        variables,
        _reply_tokens,
        item_text=lambda n: units[n - 1],
        max_items=ctx.policy.units.per_call,
    )
    answers = await ask_windows(
        ctx,
        "segmenter",
        1,
        windows,
        lambda w: segmentation_schema(w.first, w.last),
        lambda r: None,
        lambda w: variables(w.first, w.last),
    )
    steps, calls = [], []
    for w, (result, window_calls, error) in zip(windows, answers):
        calls.extend(window_calls)
        if result is None:
            return _failed(calls, error)
        steps.extend(
            {
                "unit_start": start,
                "unit_end": end,
                "text": join_units(units[start - 1 : end], joins[start - 1 : end]),
                "joined_by": joins[start - 1],
            }
            for start, end in steps_from_starts(result.starts, w.first, w.last)
        )
    return {"steps": steps, "calls": calls}


@implements("segmenter", "echo")
async def _by_echo(state: TraceState, ctx: RunContext) -> dict:
    """The paper's call 1, checked: each echoed step must be the original's text."""
    settings, thinking = ctx.policy.echo, state["thinking"]
    sentence_count = sum(len(sentences(p)) for p in paragraphs(thinking)) or 1
    checked: dict[str, EchoCheck] = {}

    def faithful(result) -> str | None:
        echo = check_echo(thinking, [step.text for step in result.steps])
        checked["last"] = echo
        return _echo_problem(echo, settings) if settings.gate else None  # ungated: measured below, not refused

    if ctx.policy.replies == "text":  # the paper's free text, at the agent's own output cap (2048 in the paper)
        schema, max_tokens = EchoText, ctx.policy.agents["segmenter"].max_tokens
    else:
        schema = echo_schema(2 * sentence_count)
        max_tokens = 64 + int(1.3 * ctx.counter.count(thinking)) + 12 * sentence_count
    result, calls, error = await ask(
        ctx,
        "segmenter",
        1,
        schema,
        faithful,
        max_tokens=max_tokens,
        question=state["trace"]["question"],
        thinking=thinking,
    )
    echo = checked.get("last")
    if echo is not None:
        measured = echo.summary()
        if not settings.gate:
            measured["problem"] = _echo_problem(echo, settings)  # what a gated policy would have refused
        if result is not None:  # the paper's format: the last step states the result, skill "clarify answer"
            measured["last_skill"] = result.steps[-1].skill
        calls.append(
            deterministic(
                "echo_check",
                1,
                ctx,
                {"echoed_steps": len(echo.faithfulness)},
                measured,
                error=None if result is not None else error,
            )
        )
    if result is None:
        if echo is not None and error == _echo_problem(echo, settings):
            return {"calls": calls, "status": REJECTED, "reason": reason(UNFAITHFUL_ECHO, error)}
        return _failed(calls, error)
    return {"steps": _steps_from_echo(thinking, result.steps, echo), "calls": calls, "echo_coverage": echo.coverage}


def _echo_problem(echo: EchoCheck, settings) -> str | None:
    """What is wrong with an echo, as the fix the teacher should make (None when it is faithful enough)."""
    problems = []
    if echo.coverage < settings.min_coverage:
        problems.append(
            f"your steps reproduce only {echo.coverage:.0%} of the reasoning (at least "
            f"{settings.min_coverage:.0%} is needed): copy every sentence"
        )
    unfaithful = echo.unfaithful(settings.min_step_faithfulness)
    if unfaithful:
        listed = ", ".join(str(n) for n in unfaithful[:8])
        problems.append(f"the text of step(s) {listed} is not in the reasoning: copy each step's text exactly")
    return "; ".join(problems) or None


def _steps_from_echo(thinking: str, echoed, echo: EchoCheck) -> list[dict]:
    """Steps carry the original text each echoed step maps to (consecutive spans, so nothing is lost) and the
    echo itself, for `drp diff`."""
    starts = [span[0] if span else None for span in echo.spans]
    bounds = [s for s in starts if s is not None]
    steps = []
    for number, step in enumerate(echoed):
        start = starts[number]
        if start is None:
            text = ""
        else:
            following = [s for s in bounds if s > start]
            end = following[0] if following else len(thinking)
            text = thinking[0 if start == bounds[0] else start : end].strip()
        steps.append(
            {
                "unit_start": None,
                "unit_end": None,
                "text": text or step.text,
                "echo": step.text,
                "skill": step.skill,
                "joined_by": PARAGRAPH,
            }
        )
    return steps


def _reply_tokens(first: int, last: int, size=None) -> int:
    """At most one start number per unit."""
    return 16 + 4 * (last - first + 1)


def _failed(calls: list[dict], error: str | None) -> dict:
    return {"calls": calls, "status": FAILED, "reason": reason(SEGMENTER_UNUSABLE, error)}
