"""Teacher access: every LLM call goes through langchain-openai against an OpenAI-compatible endpoint.

Servers differ in how they take structured output, so the method is a per-teacher setting:
`json_schema` (OpenAI, vLLM, llama.cpp), `function_calling`, `json_mode` (`json_object` with the schema
attached, which llama.cpp and vLLM enforce), or `prompt` (plain reply, JSON parsed here). The schema is built
per call (see drp/schemas.py), and so is the output budget: `max_tokens` sized from what the reply must hold.

Time: every request has a total deadline (`--teacher-timeout`, or by default 60 s, plus 1 s per 100 characters of
prompt and 1 s per 5 output tokens the request allows: short calls end fast on an API, long ones still fit a
small model on a busy CPU). A reply still incomplete at the deadline — slow, stuck, or dripping bytes — is
abandoned and never re-sent; the client's own retries cover only quick refusals (HTTP 429 with Retry-After,
5xx, refused connections) within that deadline.
Transport faults raise TeacherError, described as drp.endpoint describes them for the student client too; a
reply that does not parse is returned as an error string, for the agent to retry.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from drp import reply_json
from drp.endpoint import EndpointSettings, describe_error, short, timeout_message
from drp.policy import AgentSettings, StructuredMethod


# The automatic deadline: a fixed allowance (connection, queueing) plus reading the prompt and writing max_tokens
# at the slowest rates we plan for. Measured: a 1.5B Q4 model on two busy CPU cores reads ~20-30 prompt tokens/s
# (~100 characters/s) and writes 2-15 tokens/s.
DEADLINE_BASE_SECONDS = 60.0
DEADLINE_PROMPT_CHARS_PER_SECOND = 100.0
DEADLINE_TOKENS_PER_SECOND = 5.0


class TeacherError(RuntimeError):
    """The endpoint failed (after retries): the trace fails, the run goes on."""


@dataclass(frozen=True)
class TeacherSettings(EndpointSettings):
    structured_output: StructuredMethod = "json_schema"
    timeout: float | None = None  # total deadline per request in seconds; None: sized from the request
    max_retries: int = 2  # quick refusals only: a request that ran into its deadline is never re-sent

    def deadline(self, max_tokens: int, prompt_chars: int = 0) -> float:
        if self.timeout:
            return self.timeout
        return round(DEADLINE_BASE_SECONDS + prompt_chars / DEADLINE_PROMPT_CHARS_PER_SECOND
                     + max_tokens / DEADLINE_TOKENS_PER_SECOND, 1)

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
        self._models: dict[str, object] = {}
        self._http = None  # httpx.AsyncClient, made on first use

    def _chat_model(self, agent: AgentSettings):
        import httpx
        from langchain_openai import ChatOpenAI

        model = agent.model or self.settings.model
        if model not in self._models:
            # The client's own timeout only backs up the deadline in `ask`, which always comes first: a request
            # that timed out must not be re-sent by the client's retries.
            options = {**self.settings.client_options(), "timeout": self.settings.deadline(agent.max_tokens, 10**6) + 3600}
            # Our own HTTP client, made on this run's event loop: langchain's shared default one is cached per
            # URL and would outlive the loop of an earlier run in the same process.
            self._http = self._http or httpx.AsyncClient(timeout=options["timeout"])
            self._models[model] = ChatOpenAI(model=model, http_async_client=self._http, **options)
        return self._models[model]

    async def aclose(self) -> None:
        """Close the HTTP connections (at the end of a run's event loop)."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None
            self._models.clear()

    async def ask(self, agent: AgentSettings, messages: list[dict], schema: type[BaseModel], *,
                  max_tokens: int | None = None, temperature: float | None = None) -> Reply:
        """One request. `max_tokens` (capped by the agent's) and `temperature` (default: the agent's) are per call."""
        import openai

        model_name = agent.model or self.settings.model
        max_tokens = min(max_tokens or agent.max_tokens, agent.max_tokens)
        temperature = agent.temperature if temperature is None else temperature
        chat = self._chat_model(agent).bind(max_tokens=max_tokens, temperature=temperature)
        method = agent.structured_output or self.settings.structured_output
        deadline = self.settings.deadline(max_tokens, sum(len(str(m.get("content", ""))) for m in messages))
        started = time.perf_counter()
        try:
            async with asyncio.timeout(deadline):
                if method == "function_calling":
                    runnable = chat.with_structured_output(schema, method=method, include_raw=True)
                    result = await runnable.ainvoke(messages)
                    raw_message = result["raw"]
                    parsed, error = parse_tool_call(raw_message, schema)
                else:
                    # Sent as extra body so the client does not parse (and raise on) the reply itself: an
                    # unparseable or length-cut reply must keep its raw text and become a retry with feedback.
                    bound = chat if method == "prompt" else chat.bind(extra_body={"response_format": _response_format(method, schema)})
                    raw_message = await bound.ainvoke(messages)
                    parsed, error = parse_json_reply(_content(raw_message), schema)
                    if error and (getattr(raw_message, "response_metadata", None) or {}).get("finish_reason") == "length":
                        looping = repeated_tail(_content(raw_message))
                        error += (f" (the reply repeated {looping!r} until it was cut at max_tokens={max_tokens}: "
                                  "write each item once)" if looping else f" (the reply was cut at max_tokens={max_tokens})")
        except (TimeoutError, openai.APITimeoutError) as exc:  # the deadline: never re-sent
            raise TeacherError(timeout_message(deadline)) from exc
        except (openai.APIStatusError, openai.APIConnectionError) as exc:
            raise TeacherError(describe_error(exc, deadline, self.settings.url)) from exc
        except (ValidationError, ValueError, openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError) as exc:
            # the client library raises some parse failures itself (function calling): a retry, not a crash
            return Reply(None, "", _describe(exc, schema), model_name, latency_ms=_ms(started))
        raw = _raw_text(raw_message)
        return Reply(parsed=parsed, raw=raw, error=error, model=model_name, latency_ms=_ms(started),
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


def _response_format(method: str, schema: type[BaseModel]) -> dict:
    if method == "json_mode":
        return {"type": "json_object", "schema": schema.model_json_schema()}
    return {"type": "json_schema", "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()}}


def repeated_tail(text: str) -> str | None:
    """The phrase a runaway reply keeps repeating at its end (three times or more), or None."""
    found = _LOOP.search(text[-3000:])
    return short(found.group(1).strip(), 60) if found else None


_LOOP = re.compile(r"(.{6,200}?)(?:\s*\1){2,}\W*$", re.S)


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
        return None, _describe(exc, schema)


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
        return None, _describe(exc, schema)
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


def _describe(exc, schema: type[BaseModel] | None = None) -> str | None:
    """A parse failure as feedback the teacher can act on (the schema says how to fix its own fields)."""
    if exc is None:
        return None
    if isinstance(exc, ValidationError):
        explain = getattr(schema, "explain", None)
        if explain is not None and exc.title == schema.__name__:
            return explain(exc)
        problems = [f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}" for e in exc.errors()[:5]]
        return "the reply does not match the schema: " + "; ".join(problems)
    return short(f"{type(exc).__name__}: {exc}")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
