"""The windowed teacher call the segmenter, classifier and pruner share: a list (units or steps) cut into windows
that fit the teacher's context (drp/agents/windows.py), then one call per window, all sent together.

Each agent says only what is its own: the prompt variables of a window (`variables(first, last)`), how long a
window's reply may be (`reply_tokens(first, last, size)`), and each window's schema. The answers come back in
window order as `ask` gives them: (result or None, call records, last error).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from drp.agents.asking import ask
from drp.agents.windows import Budget, Window, plan
from drp.prompting import render_messages
from drp.run_context import RunContext


def plan_windows(
    ctx: RunContext,
    agent: str,
    count: int,
    variables: Callable[[int, int], dict],
    reply_tokens: Callable[[int, int, Callable], int],
    item_text: Callable[[int], str],
    *,
    max_items: int | None = None,
    reserve: int = 0,
) -> list[Window]:
    """Items 1..count in windows for `agent`'s calls, each window's prompt rendered from `variables`."""
    return plan(
        count,
        render=lambda first, last: render_messages(ctx.policy, agent, **variables(first, last)),
        reply_tokens=reply_tokens,
        cap=ctx.policy.agents[agent].max_tokens,
        budget=Budget.of(ctx),
        item_text=item_text,
        max_items=max_items,
        reserve=reserve,
    )


async def ask_windows(
    ctx: RunContext,
    agent: str,
    attempt: int,
    windows: list[Window],
    schema: Callable[[Window], type],
    validate: Callable,
    variables: Callable[[Window], dict],
    *,
    temperature: float | None = None,
) -> list[tuple]:
    """One call per window, sent together: each sized for the reply its window was planned for, its prompt the
    one planning rendered when there is one (else rendered from `variables(window)`)."""
    return await asyncio.gather(
        *(
            ask(
                ctx,
                agent,
                attempt,
                schema(window),
                validate,
                max_tokens=window.reply_tokens,
                temperature=temperature,
                messages=window.messages,
                **variables(window),
            )
            for window in windows
        )
    )
