"""Ask the teacher for one agent's structured reply, retrying with the problem as feedback when the
reply does not parse or fails the agent's own validation. Every try is recorded.

Each call's `max_tokens` is what the context budget leaves (drp/agents/windows.py), at most the agent's own
cap: the prompt plus the reply always fit the teacher's context. A retry shows the teacher its failed reply
when that still fits, and only the error otherwise."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from drp.agents.calls import record
from drp.agents.context import RunContext
from drp.agents.windows import Budget
from drp.prompting import render_messages
from drp.teacher import TeacherError

DEFAULT_REPLY_TOKENS = 256  # room a call must leave for its reply when the agent gives no estimate


async def ask(
    ctx: RunContext, agent: str, attempt: int, schema: type[BaseModel], validate: Callable[[BaseModel], str | None], /,
    *, reply_tokens: int | None = None, messages: list[dict] | None = None, **variables,
) -> tuple[BaseModel | None, list[dict], str | None]:
    """Returns (valid result or None, call records, last error). Raises TeacherError on transport faults.
    `reply_tokens`: how long the reply may need to be (the call is not sent without room for it);
    `messages`: the prompt, when it is already rendered from these variables."""
    policy = ctx.policy
    settings = policy.agents[agent]
    budget = Budget.of(ctx)
    needed = min(reply_tokens or DEFAULT_REPLY_TOKENS, settings.max_tokens)
    first = messages or render_messages(policy, agent, **variables)
    messages = first
    prompt_name = f"{policy.name}/{settings.prompt}"
    calls: list[dict] = []
    error = None
    for _ in range(policy.parse_retries + 1):
        room = budget.reply_room(messages, settings.max_tokens)
        if room < needed and messages is not first:
            messages = _error_only_retry(first, error)
            room = budget.reply_room(messages, settings.max_tokens)
        if room < needed:
            error = (f"context: the prompt leaves room for {room} reply tokens within context.max_tokens "
                     f"{budget.limit} (margin {budget.margin}); this call needs {needed}")
            calls.append(record(agent, attempt, policy.name, prompt_name, policy.prompt_hashes[agent], llm=False,
                                messages=messages, error=error, model=settings.model or ctx.teacher.settings.model))
            return None, calls, error
        try:
            reply = await ctx.teacher.ask(settings, messages, schema, max_tokens=room, node=agent, attempt=attempt)
        except TeacherError as exc:
            calls.append(
                record(agent, attempt, policy.name, prompt_name, policy.prompt_hashes[agent], llm=True,
                       messages=messages, error=f"teacher_error: {exc}",
                       model=settings.model or ctx.teacher.settings.model,
                       endpoint=getattr(exc, "endpoint", None), endpoint_errors=getattr(exc, "endpoint_errors", None))
            )
            exc.calls = calls  # the transcript so far travels with the fault
            raise
        error = reply.error or (validate(reply.parsed) if reply.parsed is not None else "no result")
        calls.append(
            record(
                agent, attempt, policy.name, prompt_name, policy.prompt_hashes[agent], llm=True, messages=messages,
                raw_output=reply.raw, parsed=reply.parsed, error=error, model=reply.model,
                input_tokens=reply.input_tokens, output_tokens=reply.output_tokens, latency_ms=reply.latency_ms,
                usage=reply.usage,
                endpoint=reply.endpoint, endpoint_errors=reply.endpoint_errors,
            )
        )
        if error is None:
            return reply.parsed, calls, None
        messages = [
            *messages,
            {"role": "assistant", "content": reply.raw or "(empty reply)"},
            {"role": "user", "content": f"Your reply could not be used: {error}\nReply again with corrected JSON only."},
        ]
    return None, calls, error


def _error_only_retry(first: list[dict], error: str | None) -> list[dict]:
    """The first prompt with the error added to its last message (the failed reply left out, to fit)."""
    *head, last = first
    note = f"\n\nYour previous reply could not be used: {error}\nReply with corrected JSON only."
    return [*head, {**last, "content": last["content"] + note}]
