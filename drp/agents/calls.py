"""One shape for every recorded agent call, LLM or deterministic, so inspection works for every policy.
Each record says whether the teacher LLM was called (`llm`), so nothing has to guess it from the model name."""

from __future__ import annotations

import json

from drp.run_context import RunContext
from drp.store import now


def record(
    node: str,
    attempt: int,
    policy: str,
    prompt_name: str | None,
    prompt_hash: str | None,
    *,
    llm: bool,
    messages: list[dict] | None = None,
    raw_output: str | None = None,
    parsed=None,
    error: str | None = None,
    model: str = "deterministic",
    input_tokens: int | None = 0,
    output_tokens: int | None = 0,
    latency_ms: float = 0.0,
    usage: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    endpoint: str | None = None,
    endpoint_errors: list[dict] | None = None,
    reuse_key: str | None = None,
    reused_from: dict | None = None,
) -> dict:
    """`usage`, for a teacher reply: where its token counts come from (drp.teacher.Reply.usage). `reuse_key`: the
    request's content key when its reply may be reused by later runs (drp/reuse.py); `reused_from`: the stored call
    a reused reply came from ({"run", "trace_id", "seq"})."""
    reused_from = reused_from or {}
    return {
        "node": node,
        "attempt": attempt,
        "policy": policy,
        "prompt_name": prompt_name,
        "prompt_hash": prompt_hash,
        "messages": messages or [],
        "raw_output": raw_output,
        "parsed": parsed.model_dump() if hasattr(parsed, "model_dump") else parsed,
        "error": error,
        "model": model,
        "llm": llm,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "latency_ms": latency_ms,
        "usage": usage,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "started_at": now(),
        "endpoint": endpoint,
        "endpoint_errors": endpoint_errors,
        "reuse_key": reuse_key,
        "reused_run": reused_from.get("run"),
        "reused_trace": reused_from.get("trace_id"),
        "reused_seq": reused_from.get("seq"),
    }


def deterministic(node: str, attempt: int, ctx: RunContext, inputs: dict, result, error: str | None = None) -> dict:
    """Record a rule-based agent like an LLM call: its inputs as the 'prompt', its result as the reply."""
    policy = ctx.policy
    return record(
        node,
        attempt,
        policy.name,
        f"{policy.name}/{node}",
        policy.prompt_hashes.get(node),
        llm=False,
        messages=[{"role": "input", "content": json.dumps(inputs, ensure_ascii=False, default=str)}],
        raw_output=json.dumps(result, ensure_ascii=False, default=str),
        parsed=result,
        error=error,
        model="rules" if node != "verifier" else "deterministic",
    )
