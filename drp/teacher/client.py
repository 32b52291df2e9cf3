"""The teacher client: every LLM call goes through langchain-openai against an OpenAI-compatible endpoint.

Servers differ in how they take structured output, so the method is a per-teacher setting:
`json_schema` (OpenAI, vLLM), `function_calling`, `json_mode`, or `prompt` (plain reply, JSON parsed by
drp.teacher.replies). Transport faults (HTTP errors after the client's own retries, timeouts, refused
connections) raise TeacherError, described as drp.endpoint describes them for the student client too; a reply
that does not parse is returned as an error string, for the agent to retry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from drp.endpoint import EndpointSettings, describe_error
from drp.policy import AgentSettings, StructuredMethod
from drp.teacher.replies import content, describe, parse_json_reply, parse_tool_call, raw_text, response_format


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
                bound = chat if method == "prompt" else chat.bind(extra_body={"response_format": response_format(method, schema)})
                raw_message = await bound.ainvoke(messages)
                parsed, error = parse_json_reply(content(raw_message), schema)
                if error and (getattr(raw_message, "response_metadata", None) or {}).get("finish_reason") == "length":
                    error += f" (the reply was cut at max_tokens={agent.max_tokens})"
        except (openai.APIStatusError, openai.APIConnectionError) as exc:
            raise TeacherError(describe_error(exc, self.settings.timeout, self.settings.url)) from exc
        except (ValidationError, ValueError, openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError) as exc:
            # the client library raises some parse failures itself (function calling): a retry, not a crash
            return Reply(None, "", describe(exc), chat.model_name, latency_ms=_ms(started))
        raw = raw_text(raw_message)
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


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
