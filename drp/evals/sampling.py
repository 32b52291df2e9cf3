"""Sampling from an OpenAI-compatible endpoint: concurrent, append-only, resumable, never crashing on a fault.

Workers only talk HTTP; grading, token counting and writing happen in the calling thread, one result at a
time, so the JSONL file is written by one thread and flushed per sample (a kill loses only in-flight samples).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from drp.endpoint import EndpointSettings, describe_error
from drp.errors import EXIT_ENDPOINT_DOWN, UserError
from drp.jsonl import read_lines
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


@dataclass(kw_only=True)
class SamplingSettings:
    """What `eval` and `generate` share: the endpoint, the problems' source, decoding, how requests run."""

    endpoint: EndpointSettings
    out: Path
    limit: int | None = None
    data_dir: Path | None = None
    source: str = "auto"
    prompt_template: str | None = None
    tokenizer: str | None = None
    decoding: Decoding = field(default_factory=lambda: Decoding(0.6, 0.95, 16384))
    concurrency: int = 8
    max_consecutive_errors: int = 20
    progress: bool = True
    overwrite: bool = False

    def open_endpoint(self, echo: Callable[[str], None]) -> Endpoint:
        """The endpoint, probed (EndpointDown before anything is written or deleted); warns when the server
        does not list the model."""
        endpoint = Endpoint(self.endpoint)
        served = endpoint.probe()
        if served and endpoint.model not in served:
            echo(f"warning: {redact_url(endpoint.url)} lists {', '.join(served[:5])} but not {endpoint.model}")
        return endpoint


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
        from drp.evals.protocols import cut_at_stop

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


# ---------------------------------------------------------------- the worker pool


@dataclass(frozen=True)
class Task:
    key: tuple  # the resume key, e.g. (benchmark, seed, problem_id)
    messages: list[dict]
    seed: int | None
    payload: Any = None
    prompt: str | None = None  # a raw completion (no chat template) instead of the messages
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None  # this task's cap, when it is not the decoding's

    def run(self, endpoint: Endpoint, decoding: Decoding) -> Completion:
        if self.max_tokens is not None:
            decoding = replace(decoding, max_tokens=self.max_tokens)
        if self.prompt is not None:
            return endpoint.complete_raw(self.prompt, self.stop, decoding, self.seed)
        return endpoint.complete(self.messages, decoding, self.seed)


@dataclass
class PoolOutcome:
    done: int = 0
    failed: int = 0
    aborted: str | None = None  # why the run stopped early (too many errors in a row)
    interrupted: bool = False


def run_tasks(
    tasks: list[Task],
    endpoint: Endpoint,
    decoding: Decoding,
    concurrency: int,
    on_result: Callable[[Task, Completion], None],
    max_consecutive_errors: int = 20,
) -> PoolOutcome:
    """Sample every task; on_result runs in this thread. Stops submitting after too many errors in a row."""
    outcome = PoolOutcome()
    if not tasks:
        return outcome
    todo: queue.Queue = queue.Queue()
    for task in tasks:
        todo.put(task)
    results: queue.Queue = queue.Queue()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                task = todo.get_nowait()
            except queue.Empty:
                return
            results.put((task, task.run(endpoint, decoding)))

    # Daemon threads: on Ctrl-C the process exits at once instead of waiting for in-flight requests.
    threads = [
        threading.Thread(target=worker, daemon=True, name=f"sampler-{i}")
        for i in range(max(1, min(concurrency, len(tasks))))
    ]
    for thread in threads:
        thread.start()
    in_a_row, last_error = 0, None
    try:
        while True:
            try:
                task, completion = results.get(timeout=0.2)
            except queue.Empty:
                if not any(t.is_alive() for t in threads) and results.empty():
                    break
                continue
            on_result(task, completion)
            if completion.error:
                outcome.failed += 1
                in_a_row, last_error = in_a_row + 1, completion.error
                if max_consecutive_errors and in_a_row >= max_consecutive_errors and not stop.is_set():
                    stop.set()
                    outcome.aborted = f"{in_a_row} requests in a row failed (last: {last_error})"
            else:
                outcome.done += 1
                in_a_row = 0
    except KeyboardInterrupt:
        stop.set()
        outcome.interrupted = True
    return outcome


# ---------------------------------------------------------------- the append-only sample file


def read_records(path: Path) -> Iterator[dict]:
    """Records of a JSONL file written by SampleWriter; a line cut short by a kill is skipped (its sample is
    redone). A line that is not UTF-8 raises UnicodeDecodeError: the file is not one SampleWriter wrote."""
    if not path.exists():
        return
    for line in read_lines(path):
        if isinstance(line.error, UnicodeDecodeError):
            raise line.error
        if line.error is None and isinstance(line.record, dict):
            yield line.record


def latest_by_key(records: Iterable[dict], key: Callable[[dict], tuple]) -> dict[tuple, dict]:
    """The last record per key, except that an error never replaces a success."""
    latest: dict[tuple, dict] = {}
    for record in records:
        k = key(record)
        if record.get("error") and k in latest and not latest[k].get("error"):
            continue
        latest[k] = record
    return latest


class SampleWriter:
    """Appends one JSON line per sample and flushes it, so what is on disk is always a valid resume point."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail(path)
        self._handle = open(path, "a", encoding="utf-8")

    @staticmethod
    def _repair_tail(path: Path) -> None:
        # A kill mid-write leaves a last line without its newline: a record cut short, never read (its sample
        # is drawn again). It is cut off, so the file holds whole records only and resumes any number of times.
        if not path.exists() or not path.stat().st_size:
            return
        with open(path, "rb+") as handle:
            handle.seek(-1, 2)
            if handle.read(1) == b"\n":
                return
            end = handle.seek(0, 2)
            start = end
            while start > 0:  # back to the last newline, a block at a time
                step = min(65536, start)
                handle.seek(start - step)
                block = handle.read(step)
                newline = block.rfind(b"\n")
                if newline >= 0:
                    handle.truncate(start - step + newline + 1)
                    return
                start -= step
            handle.truncate(0)

    def write(self, record: dict) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
