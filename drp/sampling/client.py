"""The student's endpoint: one model behind an OpenAI-compatible API, chat or raw completions, every fault a
recorded per-sample error (never an exception)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drp.endpoint import EndpointSettings, describe_error
from drp.errors import EXIT_ENDPOINT_DOWN, UserError
from drp.layout import join_response
from drp.redaction import redact_url

PROBE_TIMEOUT = 15.0  # seconds for the model listing that checks the endpoint is up


class EndpointDown(UserError):
    """The endpoint cannot be reached (or refuses) before anything is sampled."""

    exit_code = EXIT_ENDPOINT_DOWN


class NoCompletionsEndpoint(UserError):
    """A raw-completion protocol against a server that only serves chat."""


@dataclass(frozen=True)
class Decoding:
    temperature: float
    top_p: float
    max_tokens: int
    extra_body: dict = field(default_factory=dict)

    def public(self) -> dict:
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "extra_body": self.extra_body,
        }


@dataclass(frozen=True)
class Completion:
    text: str | None = None
    finish_reason: str | None = None
    completion_tokens: int | None = None  # the server's own count (usage), for the cross-check
    prompt_tokens: int | None = None
    latency_s: float = 0.0
    error: str | None = None


class Endpoint:
    """One model behind an OpenAI-compatible chat API."""

    def __init__(self, settings: EndpointSettings):
        from openai import OpenAI

        self.settings = settings
        self.url, self.model = settings.url.rstrip("/"), settings.model
        self.client = OpenAI(**settings.client_options())
        self.kind = "unknown"

    def probe(self) -> list[str]:
        """Served model ids; raises EndpointDown with a message naming the URL when it cannot be reached."""
        import httpx

        try:
            served = [m.id for m in self.client.with_options(max_retries=0, timeout=PROBE_TIMEOUT).models.list()]
        except Exception as exc:
            raise EndpointDown(
                f"endpoint {redact_url(self.url)} is not answering: "
                f"{describe_error(exc, PROBE_TIMEOUT, self.url)}; start one with `drp serve MODEL`"
            ) from None
        self.kind = _server_kind(self.url, httpx)
        return served

    def sampling_extra(self, decoding: Decoding) -> dict:
        """`transformers serve` keeps the model's do_sample (often False) unless told: temperature alone is not
        enough there, and seeds would all give the same greedy text."""
        extra = dict(decoding.extra_body)
        if self.kind == "transformers" and decoding.temperature > 0 and "generation_config" not in extra:
            extra["generation_config"] = json.dumps({"do_sample": True})
        return extra

    def context_length(self) -> int | None:
        """The served model's context: vLLM lists it (max_model_len); else the local model folder's config."""
        try:
            for model in self.client.with_options(max_retries=0, timeout=PROBE_TIMEOUT).models.list():
                if model.id == self.model and (model.model_extra or {}).get("max_model_len"):
                    return int(model.model_extra["max_model_len"])
        except Exception:
            pass
        return _config_context(self.model)

    def probe_completions(self) -> None:
        """One token of a raw completion; a server without /v1/completions (404/405) is named in one clear error."""
        import openai

        try:
            self.client.with_options(max_retries=0, timeout=max(PROBE_TIMEOUT, 60.0)).completions.create(
                model=self.model, prompt="Q:", max_tokens=1, temperature=0.0
            )
        except (openai.NotFoundError, openai.APIStatusError) as exc:
            if getattr(exc, "status_code", None) in (404, 405, 501):
                raise NoCompletionsEndpoint(
                    f"{redact_url(self.url)} has no /v1/completions endpoint (HTTP {exc.status_code}): "
                    "--protocol paper sends raw prompts without a chat template, which a chat-only server cannot "
                    "take. Serve the model with vLLM (`drp serve MODEL --backend vllm`) or with transformers "
                    ">= 5 (`transformers serve`), which both have it"
                ) from None
            # any other refusal (a bad model name, a server error) shows up per sample, with its reason
        except Exception:
            pass

    def complete_raw(self, prompt: str, stop: tuple[str, ...], decoding: Decoding, seed: int | None) -> Completion:
        """A raw completion (no chat template), cut at the first stop string as lm-eval cuts it. No BOS is added
        to the prompt (`add_special_tokens` false, which vLLM reads): lm-eval 0.4.5 sends raw prompts so.
        `transformers serve` refuses fields it does not know (HTTP 422) and tokenizes with the tokenizer's
        defaults: it gets no such field (drp's CPU path; a BOS-adding tokenizer then adds one there)."""
        extra = self.sampling_extra(decoding)
        if self.kind != "transformers":
            extra = {"add_special_tokens": False, **extra}
        return self._timed(
            lambda: self.client.completions.create(
                model=self.model,
                prompt=prompt,
                temperature=decoding.temperature,
                top_p=decoding.top_p,
                max_tokens=decoding.max_tokens,
                seed=seed,
                stop=list(stop) or None,
                extra_body=extra or None,
            ),
            lambda choice: cut_at_stop(choice.text or "", stop),
        )

    def complete(self, messages: list[dict], decoding: Decoding, seed: int | None) -> Completion:
        return self._timed(
            lambda: self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                temperature=decoding.temperature,
                top_p=decoding.top_p,
                max_tokens=decoding.max_tokens,
                seed=seed,
                extra_body=self.sampling_extra(decoding) or None,
            ),
            lambda choice: _full_text(choice.message),
        )

    def _timed(self, send, text_of) -> Completion:
        """One request, timed; every fault becomes a recorded per-sample error, never an exception."""
        started = time.perf_counter()
        try:
            response = send()
        except Exception as exc:
            return Completion(latency_s=time.perf_counter() - started, error=describe_error(exc, self.settings.timeout))
        latency = time.perf_counter() - started
        if not getattr(response, "choices", None):
            return Completion(latency_s=latency, error="the server returned no choices")
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        return Completion(
            text=text_of(choice),
            finish_reason=choice.finish_reason,
            completion_tokens=getattr(usage, "completion_tokens", None),
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            latency_s=latency,
        )


def _config_context(model: str) -> int | None:
    """max_position_embeddings of a local model folder (`transformers serve` names models by their path)."""
    from drp.models import resolve

    config = Path(resolve(model)) / "config.json"
    if not config.is_file():
        return None
    try:
        values = json.loads(config.read_text())
    except (OSError, ValueError):
        return None
    for source in (values, values.get("text_config") or {}):
        if isinstance(source.get("max_position_embeddings"), int):
            return source["max_position_embeddings"]
    return None


def _full_text(message: Any) -> str:
    """Content, with the thinking put back in front when the server split it off (vLLM reasoning parsers)."""
    content = message.content or ""
    extra = getattr(message, "model_extra", None) or {}
    reasoning = extra.get("reasoning_content") or extra.get("reasoning")
    if reasoning:
        return join_response(str(reasoning), content)
    return content


def _server_kind(url: str, httpx) -> str:
    """'transformers' when /health answers {"status": "ok"} (transformers serve); else 'other'."""
    root = url[: -len("/v1")] if url.endswith("/v1") else url
    try:
        reply = httpx.get(f"{root}/health", timeout=5)
        if (
            reply.status_code == 200
            and reply.headers.get("content-type", "").startswith("application/json")
            and reply.json() == {"status": "ok"}
        ):
            return "transformers"
    except Exception:
        pass
    return "other"


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """The text before the first stop string, as lm-eval cuts it (vLLM leaves the stop string out;
    `transformers serve` keeps it, and may run a token past it)."""
    cuts = [text.find(marker) for marker in stop if marker and marker in text]
    return text[: min(cuts)] if cuts else text
