"""Ask the teacher for one agent's structured reply, retrying when the reply does not parse or fails the
agent's own validation. Every try is recorded.

A retry is a different question, not the same one again: the prompt is rendered afresh with a note naming
the exact fix ("unit 8 does not exist; the last unit is 7"), the failed reply is not sent back (it would only
grow the input and invite a copy), and the temperature rises to the policy's `retry_temperature`, so a
deterministic teacher cannot return the same bytes again."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from drp.agents.calls import record
from drp.agents.context import RunContext
from drp.llm import TeacherError
from drp.prompting import render_messages


async def ask(
    ctx: RunContext, agent: str, attempt: int, schema: type[BaseModel], validate: Callable[[BaseModel], str | None], /,
    max_tokens: int | None = None, temperature: float | None = None, **variables,
) -> tuple[BaseModel | None, list[dict], str | None]:
    """Returns (valid result or None, call records, last error). Raises TeacherError on transport faults."""
    policy = ctx.policy
    settings = policy.agents[agent]
    prompt_name = f"{policy.name}/{settings.prompt}"
    first_temperature = settings.temperature if temperature is None else temperature
    calls: list[dict] = []
    error = None
    for try_number in range(policy.parse_retries + 1):
        messages = render_messages(policy, agent, **variables)
        temperature = first_temperature
        if error is not None:
            messages = with_note(messages, f"Your previous reply could not be used: {error}. Reply again with JSON only.")
            temperature = max(first_temperature, policy.retry_temperature)
        try:
            reply = await ctx.teacher.ask(settings, messages, schema, max_tokens=max_tokens, temperature=temperature)
        except TeacherError as exc:
            calls.append(
                record(agent, attempt, policy.name, prompt_name, policy.prompt_hashes[agent], llm=True,
                       messages=messages, error=f"teacher_error: {exc}",
                       model=settings.model or ctx.teacher.settings.model, temperature=temperature,
                       max_tokens=max_tokens)
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
                temperature=temperature, max_tokens=max_tokens,
            )
        )
        if error is None:
            return reply.parsed, calls, None
    return None, calls, error


def with_note(messages: list[dict], note: str) -> list[dict]:
    """The messages with `note` added to the last user message (a fresh question, not a conversation)."""
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    changed = dict(messages[last_user], content=f"{messages[last_user]['content']}\n\n{note}")
    return [*messages[:last_user], changed, *messages[last_user + 1:]]
