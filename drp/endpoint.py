"""An OpenAI-compatible endpoint, as both of drp's clients see it: the teacher (drp.teacher: langchain-openai,
async) and the student (drp.sampling: the openai SDK, threads). Both build their client from one
EndpointSettings, both leave retries to the openai client (RETRY_POLICY), and both describe a transport
fault with describe_error. Nothing heavy is imported here, so commands can use it for their options.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from drp.redaction import NO_KEY, redact_url, scrub

RETRY_POLICY = (
    "the openai client retries connection errors, timeouts, 408, 409, 429 (honouring Retry-After) "
    "and 5xx, with exponential backoff"
)
# How a teacher server takes structured output (drp/teacher/): a per-teacher setting, checked when parsed.
StructuredMethod = Literal["json_schema", "function_calling", "json_mode", "prompt"]


@dataclass(frozen=True)
class EndpointSettings:
    url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this variable, never given or stored itself
    timeout: float = 120.0  # seconds per request
    max_retries: int = 3  # per request, see RETRY_POLICY

    def client_options(self) -> dict:
        """Keyword arguments that openai.OpenAI and langchain's ChatOpenAI both take."""
        return {
            "base_url": self.url,
            "api_key": os.environ.get(self.api_key_env) or NO_KEY,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }

    def public(self) -> dict:
        """What may be written to logs and configs: the key's variable name, never the key."""
        return {
            "url": redact_url(self.url),
            "model": self.model,
            "api_key_env": self.api_key_env,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
        }


def describe_error(exc: BaseException, timeout: float, url: str | None = None) -> str:
    """One line for a fault the client gave up on (after its retries); credentials in `url` are masked in it."""
    return scrub(_describe(exc, timeout), url)


def _describe(exc: BaseException, timeout: float) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return timeout_message(timeout)
    if isinstance(exc, openai.APIConnectionError):
        return f"connection failed: {short(str(transport_cause(exc, openai.APIConnectionError)))}"
    if isinstance(exc, openai.APIStatusError):
        message = exc.message if isinstance(exc.message, str) else str(exc)
        return f"HTTP {exc.status_code}: {short(message)}"
    return short(f"{type(exc).__name__}: {exc}")


def timeout_message(seconds: float) -> str:
    """A request given up at its time limit (the teacher's total deadline, the student's request timeout)."""
    return f"timeout after {seconds:g}s"


def transport_cause(exc: BaseException, wrapper: type) -> BaseException:
    """What the HTTP transport said, under the client's generic "Connection error." (langchain wraps it once more)."""
    while isinstance(exc, wrapper) and (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__
    return exc


def short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
