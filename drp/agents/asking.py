"""Ask the teacher for one agent's structured reply, retrying with the problem as feedback when the
reply does not parse or fails the agent's own validation. Every try is recorded."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from drp.agents.calls import record
from drp.agents.context import RunContext
from drp.teacher import TeacherError
from drp.prompting import render_messages


async def ask(
    ctx: RunContext, agent: str, attempt: int, schema: type[BaseModel], validate: Callable[[BaseModel], str | None], /,
    **variables,
) -> tuple[BaseModel | None, list[dict], str | None]:
    """Returns (valid result or None, call records, last error). Raises TeacherError on transport faults."""
    policy = ctx.policy
    settings = policy.agents[agent]
    messages = render_messages(policy, agent, **variables)
    prompt_name = f"{policy.name}/{settings.prompt}"
    calls: list[dict] = []
    error = None
    for _ in range(policy.parse_retries + 1):
        try:
            reply = await ctx.teacher.ask(settings, messages, schema, node=agent, attempt=attempt)
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
