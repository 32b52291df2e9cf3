"""Ask the teacher for one agent's structured reply, retrying when the reply does not parse or fails the
agent's own validation. Every try is recorded.

A retry is a different question, not the same one again: the prompt is rendered afresh with a note naming
the exact fix ("unit 8 does not exist; the last unit is 7"), the failed reply is not sent back (it would only
grow the input and invite a copy), and the temperature rises to the policy's `retry_temperature`, so a
deterministic teacher cannot return the same bytes again.

Reuse (drp/reuse.py): a first try at the agent's own temperature carries a content key; when one of the run's
`--reuse` runs answered that key, its stored reply is used without a network call and the record names where it
came from. Retries are never keyed, so never reused.

Each call's `max_tokens` is the output budget the agent sized for it (at most the agent's own cap), further
bounded by what the context budget leaves (drp/agents/windows.py): the prompt plus the reply always fit the
teacher's context, and a call without room for the reply it needs is not sent."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from pydantic import BaseModel

from drp.agents.calls import record
from drp.agents.windows import Budget
from drp.outcomes import TEACHER_ERROR, reason
from drp.prompting import render_messages
from drp.reuse import request_key, stored_reply
from drp.run_context import RunContext
from drp.teacher import TeacherError

DEFAULT_REPLY_TOKENS = 256  # room a call must leave for its reply when the agent gives no estimate


async def ask(
    ctx: RunContext,
    agent: str,
    attempt: int,
    schema: type[BaseModel],
    validate: Callable[[BaseModel], str | None],
    /,
    *,
    max_tokens: int | None = None,
    temperature: float | None = None,
    reply_tokens: int | None = None,
    messages: list[dict] | None = None,
    **variables,
) -> tuple[BaseModel | None, list[dict], str | None]:
    """Returns (valid result or None, call records, last error). Raises TeacherError on transport faults.
    `max_tokens`: the output budget sized for this call (capped by the agent's); `temperature`: the first try's
    (default: the agent's); `reply_tokens`: how long the reply may need to be (the call is not sent without room
    for it; default: the output budget); `messages`: the prompt, when it is already rendered from these variables."""
    policy = ctx.policy
    settings = policy.agents[agent]
    budget = Budget.of(ctx)
    cap = min(max_tokens or settings.max_tokens, settings.max_tokens)
    needed = min(reply_tokens or max_tokens or DEFAULT_REPLY_TOKENS, cap)
    first = messages or render_messages(policy, agent, **variables)
    prompt_name = f"{policy.name}/{settings.prompt}"
    first_temperature = settings.temperature if temperature is None else temperature
    model = settings.model or ctx.teacher.settings.model
    method = settings.structured_output or ctx.teacher.settings.structured_output
    calls: list[dict] = []
    error = None
    for _ in range(policy.parse_retries + 1):
        messages = first
        temperature = first_temperature
        if error is not None:
            layout = "in the layout asked for" if hasattr(schema, "from_text") else "with JSON only"
            messages = with_note(first, f"Your previous reply could not be used: {error}. Reply again {layout}.")
            temperature = max(first_temperature, policy.retry_temperature)
        room = budget.reply_room(messages, cap)
        this_call = partial(
            record, agent, attempt, policy.name, prompt_name, policy.prompt_hashes[agent], messages=messages
        )
        if room < needed:
            error = (
                f"context: the prompt leaves room for {room} reply tokens within context.max_tokens "
                f"{budget.limit} (margin {budget.margin}); this call needs {needed}"
            )
            calls.append(this_call(llm=False, error=error, model=model))
            return None, calls, error
        # Only a first try at the agent's own temperature is keyed (and so reusable): a retry is a new question.
        key = (
            request_key(messages, model, temperature, room, method, schema)
            if error is None and temperature <= settings.temperature
            else None
        )
        stored = ctx.reuse.lookup(key) if key is not None and ctx.reuse is not None else None
        # What was asked, recorded the same whether the teacher answered or failed.
        asked = partial(this_call, llm=True, temperature=temperature, max_tokens=room)
        try:
            if stored is not None:
                reply = stored_reply(stored, method, schema)
            else:
                reply = await ctx.teacher.ask(
                    settings, messages, schema, max_tokens=room, temperature=temperature, node=agent, attempt=attempt
                )
        except TeacherError as exc:
            calls.append(
                # tokens unknown (None), never 0: a call that timed out may well have been paid for
                asked(
                    raw_output=exc.raw,
                    error=reason(TEACHER_ERROR, exc),
                    model=model,
                    input_tokens=None,
                    output_tokens=None,
                    endpoint=getattr(exc, "endpoint", None),
                    endpoint_errors=getattr(exc, "endpoint_errors", None),
                )
            )
            exc.calls = calls  # the transcript so far travels with the fault
            raise
        error = reply.error or (validate(reply.parsed) if reply.parsed is not None else "no result")
        calls.append(
            asked(
                raw_output=reply.raw,
                parsed=reply.parsed,
                error=error,
                model=reply.model,
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                latency_ms=reply.latency_ms,
                usage=reply.usage,
                endpoint=reply.endpoint,
                endpoint_errors=reply.endpoint_errors,
                reuse_key=key,
                reused_from=stored,
            )
        )
        if error is None:
            return reply.parsed, calls, None
    return None, calls, error


def with_note(messages: list[dict], note: str) -> list[dict]:
    """The messages with `note` added to the last user message (a fresh question, not a conversation)."""
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    changed = dict(messages[last_user], content=f"{messages[last_user]['content']}\n\n{note}")
    return [*messages[:last_user], changed, *messages[last_user + 1 :]]
