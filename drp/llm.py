"""Teacher access: every LLM call goes through langchain-openai against an OpenAI-compatible endpoint.

Servers differ in how they take structured output, so the method is a per-teacher setting:
`json_schema` (OpenAI, vLLM), `function_calling`, `json_mode`, or `prompt` (plain reply, JSON parsed here).
Transport faults (HTTP errors after the client's own retries, timeouts, refused connections) raise
TeacherError, described as drp.endpoint describes them for the student client too; a reply that does not
parse is returned as an error string, for the agent to retry.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel, ValidationError

from drp import reply_json
from drp.endpoint import EndpointSettings, describe_error, short
from drp.policy import AgentSettings, StructuredMethod


class TeacherError(RuntimeError):
    """The endpoint failed (after retries): the trace fails, the run goes on."""


@dataclass(frozen=True)
class TeacherSettings(EndpointSettings):
    structured_output: StructuredMethod = "json_schema"

    def public(self) -> dict:
        return {**super().public(), "structured_output": self.structured_output}


@dataclass
class Reply:
    parsed: BaseModel | None
    raw: str
    error: str | None
    model: str
    input_tokens: int | None = None  # None: not known (see `usage`), never a made-up 0
    output_tokens: int | None = None
    latency_ms: float = 0.0
    usage: str = "missing"  # "reported" by the server, "counted" with the teacher's tokenizer, or "missing"


class Teacher:
    def __init__(self, settings: TeacherSettings, usage_counter=None):
        self.settings = settings
        self.usage_counter = usage_counter  # the teacher's tokenizer (a TokenCounter), for replies without usage
        self._models: dict[tuple, object] = {}

    def _chat_model(self, agent: AgentSettings):
        from langchain_openai import ChatOpenAI

        model = agent.model or self.settings.model
        key = (model, agent.temperature, agent.max_tokens)
        if key not in self._models:
            self._models[key] = ChatOpenAI(
                model=model, temperature=agent.temperature, max_tokens=agent.max_tokens,
                **self.settings.client_options(),
            )
        return self._models[key]

    async def ask(self, agent: AgentSettings, messages: list[dict], schema: type[BaseModel]) -> Reply:
        import openai

        chat = self._chat_model(agent)
        method = agent.structured_output or self.settings.structured_output
        started = time.perf_counter()
        try:
            if method == "function_calling":
                runnable = chat.with_structured_output(schema, method=method, include_raw=True)
                result = await runnable.ainvoke(messages)
                raw_message = result["raw"]
                parsed, error = parse_tool_call(raw_message, schema)
            else:
                # Sent as extra body so the client does not parse (and raise on) the reply itself: an unparseable
                # or length-cut reply must keep its raw text and become a retry with feedback.
                bound = chat if method == "prompt" else chat.bind(extra_body={"response_format": _response_format(method, schema)})
                raw_message = await bound.ainvoke(messages)
                parsed, error = parse_json_reply(_content(raw_message), schema)
                if error and (getattr(raw_message, "response_metadata", None) or {}).get("finish_reason") == "length":
                    error += f" (the reply was cut at max_tokens={agent.max_tokens})"
        except (openai.APIStatusError, openai.APIConnectionError) as exc:
            raise TeacherError(describe_error(exc, self.settings.timeout, self.settings.url)) from exc
        except (ValidationError, ValueError, openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError) as exc:
            # the client library raises some parse failures itself (function calling): a retry, not a crash
            return Reply(None, "", _describe(exc), chat.model_name, latency_ms=_ms(started))
        raw = _raw_text(raw_message)
        return Reply(parsed=parsed, raw=raw, error=error, model=chat.model_name, latency_ms=_ms(started),
                     **self._usage(raw_message, messages, raw))

    def _usage(self, message, messages: list[dict], raw: str) -> dict:
        """The call's teacher tokens: the server's usage; without one, a count with the teacher's tokenizer
        when there is one; else missing (None), which the run's figures show as missing, not as 0."""
        usage = getattr(message, "usage_metadata", None)
        if usage:
            return {"input_tokens": usage.get("input_tokens"), "output_tokens": usage.get("output_tokens"),
                    "usage": "reported"}
        if self.usage_counter is not None:
            return {"input_tokens": self.usage_counter.count_chat(messages),
                    "output_tokens": self.usage_counter.count(raw), "usage": "counted"}
        return {"input_tokens": None, "output_tokens": None, "usage": "missing"}


@lru_cache(maxsize=64)
def _response_format(method: str, schema: type[BaseModel]) -> dict:
    if method == "json_mode":
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()}}


def parse_json_reply(text: str, schema: type[BaseModel]) -> tuple[BaseModel | None, str | None]:
    """Find the JSON object in a free-text reply (code fences and chatter allowed) and validate it, with
    the LaTeX inside its strings kept (drp/reply_json.py)."""
    candidate = _json_object(text)
    if candidate is None:
        return None, "the reply contains no JSON object"
    try:
        return schema.model_validate(reply_json.decode(candidate)), None
    except reply_json.ReplyJSONError as exc:
        return None, str(exc)
    except ValidationError as exc:
        return None, _describe(exc)


def parse_tool_call(message, schema: type[BaseModel]) -> tuple[BaseModel | None, str | None]:
    """The first tool call's arguments, validated, with the LaTeX inside kept (drp/reply_json.py). The client
    decoded the arguments already, leniently; arguments it could not decode (a LaTeX `sqrt` after one
    backslash) are decoded here."""
    try:
        if getattr(message, "tool_calls", None):
            return schema.model_validate(reply_json.clean(message.tool_calls[0]["args"])), None
        if getattr(message, "invalid_tool_calls", None):
            return schema.model_validate(reply_json.decode(message.invalid_tool_calls[0]["args"] or "")), None
    except reply_json.ReplyJSONError as exc:
        return None, str(exc)
    except ValidationError as exc:
        return None, _describe(exc)
    return None, "the reply held no tool call"


def _json_object(text: str) -> str | None:
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.DOTALL)
    if fenced:
        return fenced.group(1)
    start = text.find("{")
    if start < 0:
        return None
    decoder = json.JSONDecoder(strict=False)
    try:
        _, end = decoder.raw_decode(text[start:])
        return text[start : start + end]
    except json.JSONDecodeError:
        return text[start : text.rfind("}") + 1] or None


def _content(message) -> str:
    content = getattr(message, "content", "")
    return content if isinstance(content, str) else json.dumps(content)


def _raw_text(message) -> str:
    text = _content(message)
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        text = (text + "\n" if text else "") + json.dumps(
            [{"name": c["name"], "args": c["args"]} for c in tool_calls], ensure_ascii=False
        )
    return text


def _describe(exc) -> str | None:
    if exc is None:
        return None
    if isinstance(exc, ValidationError):
        problems = [f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}" for e in exc.errors()[:5]]
        return "the reply does not match the schema: " + "; ".join(problems)
    return short(f"{type(exc).__name__}: {exc}")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
