"""The teacher client: every LLM call goes through langchain-openai against an OpenAI-compatible endpoint.

Servers differ in how they take structured output, so the method is a per-teacher setting:
`json_schema` (OpenAI, vLLM, llama.cpp), `function_calling`, `json_mode` (`json_object` with the schema
attached, which llama.cpp and vLLM enforce), or `prompt` (plain reply, JSON parsed by drp.teacher.replies). The
schema is built per call (see drp/schemas.py), and so are the output budget (`max_tokens`) and the temperature.

Time: every online request has a total deadline (`--teacher-timeout`, or by default 60 s, plus 1 s per 100
characters of prompt and 1 s per 5 output tokens the request allows: short calls end fast on an API, long ones
still fit a small model on a busy CPU). A reply still incomplete at the deadline — slow, stuck, or dripping bytes —
is abandoned and never re-sent (the endpoint pool counts it as that endpoint's failure); the client's own retries
cover only quick refusals (HTTP 429 with Retry-After, 5xx, refused connections) within that deadline.
Transport faults raise TeacherError, described as drp.endpoint describes them for the student client too; a reply
that does not parse is returned as an error string, for the agent to retry.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from drp.endpoint import NO_KEY, EndpointSettings, describe_error, timeout_message, transport_cause
from drp.policy import AgentSettings, StructuredMethod
from drp.redaction import redact_url, remember_secrets
from drp.teacher.bodies import BadReply, plausible_usage
from drp.teacher.replies import (
    content,
    describe,
    parse_json_reply,
    parse_tool_call,
    raw_text,
    repeated_tail,
    response_format,
)
from drp.teacher.scope import CURRENT_CALL, CURRENT_TRACE, CallScope

# The automatic deadline: a fixed allowance (connection, queueing) plus reading the prompt and writing max_tokens
# at the slowest rates we plan for. Measured: a 1.5B Q4 model on two busy CPU cores reads ~20-30 prompt tokens/s
# (~100 characters/s) and writes 2-15 tokens/s.
DEADLINE_BASE_SECONDS = 60.0
DEADLINE_PROMPT_CHARS_PER_SECOND = 100.0
DEADLINE_TOKENS_PER_SECOND = 5.0


class TeacherError(RuntimeError):
    """The endpoint failed (after retries): the trace fails, the run goes on. `raw`: the start of a reply that was
    not usable (for the transcript); `unreachable`: no endpoint could be reached at all (the trace is not to blame)."""

    def __init__(self, message: str, raw: str | None = None, unreachable: bool = False):
        super().__init__(message)
        self.raw, self.unreachable = raw, unreachable


@dataclass(frozen=True)
class TeacherSettings(EndpointSettings):
    structured_output: StructuredMethod = "json_schema"
    extra_urls: tuple[str, ...] = ()  # more endpoints beside `url`: each request goes to the least busy one
    timeout: float | None = None  # total deadline per request in seconds; None: sized from the request
    max_retries: int = 2  # quick refusals only: a request that ran into its deadline is never re-sent

    def deadline(self, max_tokens: int, prompt_chars: int = 0) -> float:
        if self.timeout:
            return self.timeout
        return round(
            DEADLINE_BASE_SECONDS
            + prompt_chars / DEADLINE_PROMPT_CHARS_PER_SECOND
            + max_tokens / DEADLINE_TOKENS_PER_SECOND,
            1,
        )

    @property
    def urls(self) -> tuple[str, ...]:
        return (self.url, *self.extra_urls)

    def public(self) -> dict:
        extra = {"extra_urls": [redact_url(url) for url in self.extra_urls]} if self.extra_urls else {}
        return {**super().public(), **extra, "structured_output": self.structured_output}


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
    endpoint: str | None = None  # which endpoint answered (credentials masked)
    endpoint_errors: list[dict] | None = None  # tries that failed before: {"endpoint", "error"}


class Teacher:
    """One teacher for a run's event loop. `transport` carries its HTTP requests: by default the endpoint pool
    over the settings' URLs; the batch mode passes its own (drp.teacher.batch)."""

    def __init__(self, settings: TeacherSettings, transport=None, usage_counter=None):
        from drp.teacher.endpoints import EndpointPool

        self.settings = settings
        self.transport = transport if transport is not None else EndpointPool(settings.urls)
        self.usage_counter = usage_counter  # the teacher's tokenizer (a TokenCounter), for replies without usage
        # The key and the URLs' credentials are masked in every error text a run stores or prints.
        remember_secrets(settings.client_options()["api_key"], *settings.urls)
        self._client = None
        self._models: dict[tuple, object] = {}

    def _openai_client(self):
        if self._client is None:
            import httpx2
            import openai

            from drp.teacher.endpoints import ROUTED_BASE

            options = self.settings.client_options()
            retries = self.transport.client_max_retries
            # No client timeout: the deadline in `_ask` always governs, and a request that timed out must not be
            # re-sent by the client's retries.
            # trust_env off: proxy settings must not divert requests around the transport (which routes them).
            http = httpx2.AsyncClient(transport=self.transport, timeout=None, trust_env=False)
            self._client = openai.AsyncOpenAI(
                base_url=ROUTED_BASE,
                api_key=options["api_key"] or NO_KEY,
                timeout=None,
                max_retries=options["max_retries"] if retries is None else retries,
                http_client=http,
            )
        return self._client

    def _chat_model(self, agent: AgentSettings, max_tokens: int, temperature: float | None = None):
        from langchain_openai import ChatOpenAI

        model = agent.model or self.settings.model
        temperature = agent.temperature if temperature is None else temperature
        key = (model, temperature, max_tokens)
        if key not in self._models:
            client = self._openai_client()
            self._models[key] = ChatOpenAI(
                model=model,
                temperature=temperature,
                max_tokens=max_tokens,
                api_key=client.api_key,
                async_client=client.chat.completions,
                root_async_client=client,
                client=_SYNC_UNUSED,
                max_retries=self.settings.max_retries,
                timeout=None,
            )
        return self._models[key]

    def prepare(self, agents: list[AgentSettings]) -> None:
        """Build the clients these agents will use now (before worker processes fork, which then share them)."""
        for agent in agents:
            self._chat_model(agent, agent.max_tokens)

    def trace_started(self) -> None:
        """The runner took up a trace (batch mode submits a job once every trace in flight waits on it)."""
        self.transport.trace_started()

    def trace_finished(self) -> None:
        self.transport.trace_finished()

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def ask(
        self,
        agent: AgentSettings,
        messages: list[dict],
        schema: type[BaseModel],
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        node: str | None = None,
        attempt: int | None = None,
    ) -> Reply:
        """One request. `max_tokens` (capped by the agent's) sizes this call's reply and `temperature` (default:
        the agent's) samples it; `node` and `attempt` name it for the transport (the batch queue keys requests by
        trace, node and attempt)."""
        budget = min(max_tokens or agent.max_tokens, agent.max_tokens)
        down = getattr(self.transport, "down", None)
        if down:  # every endpoint is down: the run is stopping, nothing more is sent
            raise TeacherError(down, unreachable=True)
        scope = CallScope(trace_id=CURRENT_TRACE.get(), node=node, attempt=attempt, max_tokens=budget)
        token = CURRENT_CALL.set(scope)
        try:
            reply = await self._ask(agent, messages, schema, budget, temperature)
        except TeacherError as exc:
            exc.endpoint, exc.endpoint_errors = scope.endpoint, scope.endpoint_errors or None
            raise
        finally:
            CURRENT_CALL.reset(token)
        reply.endpoint, reply.endpoint_errors = scope.endpoint, scope.endpoint_errors or None
        return reply

    async def _ask(
        self,
        agent: AgentSettings,
        messages: list[dict],
        schema: type[BaseModel],
        max_tokens: int,
        temperature: float | None,
    ) -> Reply:
        import openai

        from drp.teacher.endpoints import UNREACHABLE

        chat = self._chat_model(agent, max_tokens, temperature)
        method = agent.structured_output or self.settings.structured_output
        deadline = self.settings.deadline(max_tokens, sum(len(str(m.get("content", ""))) for m in messages))
        # Batch mode waits on a job (up to a day), not on one reply: no deadline there.
        limit = deadline if getattr(self.transport, "request_deadline", True) else None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                if method == "function_calling" and not hasattr(schema, "from_text"):
                    runnable = chat.with_structured_output(schema, method=method, include_raw=True)
                    result = await runnable.ainvoke(messages)
                    raw_message = result["raw"]
                    parsed, error = parse_tool_call(raw_message, schema)
                else:
                    # Sent as extra body so the client does not parse (and raise on) the reply itself: an
                    # unparseable or length-cut reply must keep its raw text and become a retry with feedback.
                    # A free-text schema (drp/paper_text.py) reads plain prose: no response_format is sent.
                    free_text = hasattr(schema, "from_text")
                    extra = (
                        {}
                        if method == "prompt" or free_text
                        else {"extra_body": {"response_format": response_format(method, schema)}}
                    )
                    raw_message = await chat.ainvoke(messages, **extra)
                    parsed, error = (
                        schema.from_text(content(raw_message))
                        if free_text
                        else parse_json_reply(content(raw_message), schema)
                    )
                    if (
                        error
                        and (getattr(raw_message, "response_metadata", None) or {}).get("finish_reason") == "length"
                    ):
                        looping = repeated_tail(content(raw_message))
                        error += (
                            f" (the reply repeated {looping!r} until it was cut at max_tokens={max_tokens}: "
                            "write each item once)"
                            if looping
                            else f" (the reply was cut at max_tokens={max_tokens})"
                        )
        except (TimeoutError, openai.APITimeoutError) as exc:  # the deadline: never re-sent
            raise TeacherError(timeout_message(deadline)) from exc
        except BadReply as exc:  # the endpoints answered, but nothing usable (each was tried: not re-sent)
            raise TeacherError(str(exc), raw=exc.raw) from exc
        except openai.APIConnectionError as exc:
            raise TeacherError(
                self.transport.scrub(describe_error(exc, deadline)),
                unreachable=isinstance(transport_cause(exc, openai.APIConnectionError), UNREACHABLE),
            ) from exc
        except openai.APIStatusError as exc:
            raise TeacherError(self.transport.scrub(describe_error(exc, deadline))) from exc
        except (
            ValidationError,
            ValueError,
            openai.LengthFinishReasonError,
            openai.ContentFilterFinishReasonError,
        ) as exc:
            # the client library raises some parse failures itself (function calling): a retry, not a crash
            return Reply(None, "", describe(exc, schema), chat.model_name, latency_ms=_ms(started))
        raw = raw_text(raw_message)
        return Reply(
            parsed=parsed,
            raw=raw,
            error=error,
            model=chat.model_name,
            latency_ms=_ms(started),
            **self._usage(raw_message, messages, raw, max_tokens),
        )

    def _usage(self, message, messages: list[dict], raw: str, max_tokens: int) -> dict:
        """The call's teacher tokens: the server's usage; without one (or with one out of range: negative, not
        whole, or far beyond what this request could take), a count with the teacher's tokenizer when there is
        one; else missing (None), which the run's figures show as missing, not as 0."""
        usage = getattr(message, "usage_metadata", None)
        if usage and plausible_usage(usage.get("input_tokens"), usage.get("output_tokens"), messages, max_tokens):
            return {
                "input_tokens": usage.get("input_tokens"),
                "output_tokens": usage.get("output_tokens"),
                "usage": "reported",
            }
        if self.usage_counter is not None:
            return {
                "input_tokens": self.usage_counter.count_chat(messages),
                "output_tokens": self.usage_counter.count(raw),
                "usage": "counted",
            }
        return {"input_tokens": None, "output_tokens": None, "usage": "missing"}


class _SyncUnused:
    """ChatOpenAI's synchronous client: drp never calls the teacher synchronously, so none is built."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise RuntimeError("drp calls the teacher asynchronously only")


_SYNC_UNUSED = _SyncUnused()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
