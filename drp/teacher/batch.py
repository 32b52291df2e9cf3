"""The OpenAI Batch API as the teacher's transport (`drp run --teacher-mode batch`): half the price, results within
a 24-hour window.

Nothing above the transport changes: the agents, LangGraph and langchain-openai send each request as in online
mode and get back the same chat.completion body, so the transcripts read the same. What differs is when the
request leaves. Every pending trace runs at once; each chat request is queued with a stable key (its trace, node,
attempt and a hash of its body) and waits. Once every trace in flight is waiting on the teacher, the queue goes out
as one job: a JSONL file uploaded to `/v1/files` (purpose `batch`), `POST /v1/batches`, then `GET /v1/batches/{id}`
every `poll_seconds` until the job ends, when its output and error files are downloaded and each waiting request
gets its line. So each graph stage of all traces travels in one job, and the next stage in the next.

A request whose line failed in a way worth retrying (the job expired, failed or was cancelled before reaching it,
HTTP 429/5xx, or no line at all) goes out again in the next round, up to `max_rounds` jobs; other HTTP errors come
back as they are, for the agent to record. Jobs, which request went out in which job, and every result live in the
run's database (drp.store), written before the upload: a killed run, resumed, finds its requests in the jobs it
already paid for and waits for those instead of sending them again.

Nothing the endpoint sends is trusted to end: every Batch API call has a total deadline (`call_timeout`); a job the
endpoint does not know (404), `poll_failures` failed polls in a row (errors, deadlines, a state no job has, a result
file that cannot be downloaded) or a job still running `job_timeout` after its submission ends that job, and its
requests go to the next round. Result files are capped in size and read line by line (drp.teacher.batch_results),
and a watcher that stops for any reason hands every request it held an error: nothing waits on a dead task.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx2

from drp.redaction import scrub
from drp.teacher.batch_results import Results, file_cap, line_budget, read_results
from drp.teacher.scope import current_call

ENDPOINT = "/v1/chat/completions"
ENDED = ("completed", "failed", "expired", "cancelled")
RUNNING = ("validating", "in_progress", "finalizing", "cancelling")
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
CALL_TIMEOUT = 60.0  # seconds, total, per Files/Batches API call (upload, create, poll, download)
TRANSFER_BYTES_PER_SECOND = 1_000_000  # the slowest link planned for: a file's upload or download gets this on top
POLL_FAILURES = 10  # failed polls in a row that end a job
SETTLE_SECONDS = 0.2  # how long the queue waits for a trace's sibling requests (its windows) before a job goes out
JOB_TIMEOUT = 26 * 3600.0  # seconds from a job's creation: its 24-hour window, and time to finalize
LIST_LIMIT = 1000  # jobs looked through for one whose submission was cut short
REPLY_CAP = 1_000_000  # bytes of one Files/Batches API reply other than a result file (those are capped as read)
MAX_REQUESTS_PER_JOB = 50_000  # the Batch API's limit per file


@dataclass
class Waiting:
    """One request waiting for its result."""

    custom_id: str
    body: dict
    trace_id: str | None
    node: str | None
    attempt: int | None
    future: asyncio.Future
    rounds: int = 0  # jobs it already went out in without a usable line
    last_error: str | None = None


@dataclass
class _Job:
    id: str  # drp's own id for the submission (the batch id is known only once it is created)
    batch_id: str | None
    custom_ids: list[str]
    round: int
    created: float = field(default_factory=time.time)  # when it was submitted (epoch seconds)
    task: asyncio.Task | None = field(default=None, repr=False)


class _JobEnded(Exception):
    """The job is over without its results: `status` and `detail` go to its row, its requests to the next round."""

    def __init__(self, status: str, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


class _FailedPoll(Exception):
    """A look at the job that taught nothing: counted, and tried again at the next interval."""


class BatchTransport(httpx2.AsyncBaseTransport):
    def __init__(
        self,
        settings,
        folder: Path,
        run_id: str,
        *,
        poll_seconds: float = 30.0,
        settle_seconds: float | None = None,
        max_rounds: int = 3,
        call_timeout: float | None = None,
        poll_failures: int = POLL_FAILURES,
        job_timeout: float = JOB_TIMEOUT,
    ):
        self.settings = settings
        self.folder, self.run_id = Path(folder), run_id
        # The queue is left to settle for at most one poll interval: where the endpoint is polled every 0.05 s (a
        # batch server on this machine), its jobs end sooner than a 0.2 s wait for late requests pays for.
        settle = min(SETTLE_SECONDS, poll_seconds) if settle_seconds is None else settle_seconds
        self.poll_seconds, self.settle_seconds, self.max_rounds = poll_seconds, settle, max_rounds
        self.call_timeout, self.poll_failures, self.job_timeout = (
            call_timeout or CALL_TIMEOUT,
            poll_failures,
            job_timeout,
        )
        self._broken: str | None = None  # why nothing more can be submitted (the submitting task stopped)
        self._closing = False
        self._store = None
        self._client = None
        self._queue: list[Waiting] = []
        self._jobs: dict[str, _Job] = {}  # open jobs: submitted (or found on resume), not yet settled
        self._job_of: dict[str, str] = {}  # custom_id → open job
        self._waiting: dict[str, Waiting] = {}  # custom_id → the request waiting for it (queued or in a job)
        self._occurrences: dict[tuple, int] = {}
        self._budgets: dict[str, int] = {}  # custom_id → bytes its result line can need (from its body)
        self._active = 0  # traces in flight (the runner says)
        self._waiting_traces: dict[str | None, int] = {}  # trace → its requests waiting
        self._wake: asyncio.Event | None = None
        self._collector: asyncio.Task | None = None
        self._starting: asyncio.Task | None = None
        self.jobs_submitted = 0

    client_max_retries = 0  # the chat client never re-sends: a request that needs another try joins the next job
    request_deadline = False  # a request waits on its job (up to a day), not on one reply

    # ------------------------------------------------------------ what the runner and the client call

    def trace_started(self) -> None:
        self._active += 1

    def trace_finished(self) -> None:
        self._active -= 1
        self._poke()

    def scrub(self, text: str) -> str:
        return scrub(text, self.settings.url)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.method != "POST" or not request.url.path.endswith("/chat/completions"):
            return _error_response(request, 404, f"batch mode sends chat completions only, not {request.url.path}")
        await self._start()
        if self._broken:
            return _error_response(request, 502, self._broken)
        body = json.loads(request.content)
        scope = current_call()
        trace_id, node, attempt = (scope.trace_id, scope.node, scope.attempt) if scope else (None, None, None)
        custom_id = self._custom_id(trace_id, node, attempt, body)
        stored = self._store.batch_result(custom_id)
        if stored is not None:  # answered in an earlier session: nothing is sent
            return _response(request, *stored)
        future = asyncio.get_running_loop().create_future()
        waiting = Waiting(custom_id, body, trace_id, node, attempt, future)
        self._waiting[custom_id] = waiting
        self._waiting_traces[trace_id] = self._waiting_traces.get(trace_id, 0) + 1
        self._budgets[custom_id] = line_budget(body)
        job_id = self._job_of.get(custom_id)
        if job_id is None:
            self._queue.append(waiting)
            self._poke()
        try:
            status, result = await future
        finally:
            self._waiting.pop(custom_id, None)
            self._budgets.pop(custom_id, None)
            self._waiting_traces[trace_id] -= 1
            if not self._waiting_traces[trace_id]:
                del self._waiting_traces[trace_id]
        return _response(request, status, result)

    async def aclose(self) -> None:
        self._closing = True
        tasks = [job.task for job in self._jobs.values() if job.task] + [
            t for t in (self._collector, self._starting) if t
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        if self._store is not None:
            self._store.close()

    # ------------------------------------------------------------ keys

    def _custom_id(self, trace_id, node, attempt, body: dict) -> str:
        """Stable across sessions: the same trace asking the same thing at the same point gets the same key
        (the n-th identical request of a trace is told apart by n)."""
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        key = (trace_id, node, attempt, digest)
        self._occurrences[key] = occurrence = self._occurrences.get(key, 0) + 1
        named = json.dumps([trace_id, node, attempt, digest, occurrence], ensure_ascii=False)
        return "drp-" + hashlib.sha256(named.encode()).hexdigest()[:40]

    # ------------------------------------------------------------ jobs

    async def _start(self) -> None:
        if self._starting is None:
            self._starting = asyncio.create_task(self._open_session())
        await asyncio.shield(self._starting)

    async def _open_session(self) -> None:
        import openai

        from drp.store import open_run

        self._store = open_run(self.folder, write=True)
        options = self.settings.client_options()
        http = openai.DefaultAsyncHttpxClient(
            timeout=self.call_timeout, event_hooks={"request": [_ask_plain], "response": [_cap_reply]}
        )
        self._client = openai.AsyncOpenAI(
            base_url=options["base_url"],
            api_key=options["api_key"],
            timeout=self.call_timeout,
            max_retries=options["max_retries"],
            http_client=http,
        )
        self._wake = asyncio.Event()
        await self._resume_jobs()
        self._collector = asyncio.create_task(self._collect())
        self._collector.add_done_callback(self._collector_stopped)

    async def _call(self, what: str, call, transfer_bytes: int = 0):
        """One Files/Batches API call, under its total deadline (longer by the time a file of `transfer_bytes`
        takes on a slow link): a reply that drips cannot hold it open."""
        limit = round(self.call_timeout + transfer_bytes / TRANSFER_BYTES_PER_SECOND, 1)
        try:
            return await asyncio.wait_for(call, limit)
        except TimeoutError:
            raise TimeoutError(f"{what}: no complete answer within {limit:g} s") from None

    async def _resume_jobs(self) -> None:
        """Jobs an earlier session submitted and never settled: wait for them again (or adopt a job whose
        submission was cut short before its id was stored)."""
        for row in self._store.batch_jobs(statuses=("submitting", "submitted")):
            batch_id = row["batch_id"]
            if batch_id is None:
                try:
                    batch_id = await self._call("looking for a job cut short", self._find_submission(row["id"]))
                except Exception as exc:  # noqa: BLE001 - not found out: its requests go out again
                    self._store.update_batch_job(
                        row["id"], status="abandoned", detail=self.scrub(f"could not be looked for: {_said(exc)}")
                    )
                    continue
            if batch_id is None:
                self._store.update_batch_job(row["id"], status="abandoned", detail="never created")
                continue
            self._store.update_batch_job(row["id"], batch_id=batch_id, status="submitted")
            self._open(
                _Job(
                    row["id"],
                    batch_id,
                    self._store.batch_job_requests(row["id"]),
                    row["round"],
                    created=_epoch(row["created_at"]),
                )
            )

    async def _find_submission(self, job_id: str) -> str | None:
        looked = 0
        async for batch in self._client.batches.list(limit=100):
            metadata, batch_id = getattr(batch, "metadata", None), getattr(batch, "id", None)
            if isinstance(metadata, dict) and metadata.get("drp_job") == job_id and _usable_id(batch_id):
                return batch_id
            looked += 1
            if looked >= LIST_LIMIT:  # an endpoint whose pages never end
                break
        return None

    def _open(self, job: _Job) -> None:
        self._jobs[job.id] = job
        for custom_id in job.custom_ids:
            self._job_of[custom_id] = job.id
        job.task = asyncio.create_task(self._watch(job))
        job.task.add_done_callback(lambda task: self._watcher_stopped(job, task))

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _collect(self) -> None:
        """Submit the queue once every trace in flight is waiting on the teacher."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.settle_seconds)  # let a trace's sibling requests (its windows) join the queue
            if self._queue and len(self._waiting_traces) >= self._active:
                queued, self._queue = self._queue, []
                for start in range(0, len(queued), MAX_REQUESTS_PER_JOB):
                    await self._submit(queued[start : start + MAX_REQUESTS_PER_JOB])

    async def _submit(self, requests: list[Waiting]) -> None:
        job_id = f"{self.run_id}-{uuid.uuid4().hex[:12]}"
        round_number = 1 + max(request.rounds for request in requests)
        self._store.add_batch_job(
            job_id,
            round_number,
            [
                {"custom_id": r.custom_id, "trace_id": r.trace_id, "node": r.node, "attempt": r.attempt}
                for r in requests
            ],
        )
        lines = "".join(
            json.dumps(
                {"custom_id": r.custom_id, "method": "POST", "url": ENDPOINT, "body": r.body}, ensure_ascii=False
            )
            + "\n"
            for r in requests
        )
        job = _Job(job_id, None, [r.custom_id for r in requests], round_number)
        content = lines.encode()
        try:
            uploaded = await self._call(
                "uploading the job's file",
                self._client.files.create(file=(f"{job_id}.jsonl", content), purpose="batch"),
                len(content),
            )
            if not _usable_id(getattr(uploaded, "id", None)):
                raise ValueError("the upload answered no file id")
            batch = await self._call(
                "creating the job",
                self._client.batches.create(
                    input_file_id=uploaded.id,
                    endpoint=ENDPOINT,
                    completion_window="24h",
                    metadata={"drp_run": self.run_id[:500], "drp_job": job_id},
                ),
            )
            if not _usable_id(getattr(batch, "id", None)):
                raise ValueError("the job creation answered no job id")
        except Exception as exc:  # noqa: BLE001 - the submission failed: those requests fail (or retry) like a job
            self._store.update_batch_job(job_id, status="failed", detail=self.scrub(f"submission: {_said(exc)}"))
            self._settle_missing(job, f"the batch job could not be submitted: {self.scrub(_said(exc))}")
            return
        self._store.update_batch_job(job_id, batch_id=batch.id, input_file_id=uploaded.id, status="submitted")
        self.jobs_submitted += 1
        self._open(_Job(job_id, batch.id, job.custom_ids, round_number))

    async def _watch(self, job: _Job) -> None:
        """Follow a job until it ends (or is given up), then hand each request its line."""
        try:
            status, results, detail, files = await self._follow(job)
        except _JobEnded as ended:
            status, results, detail, files = ended.status, Results(), ended.detail, {}
        self._settle(job, status, results, detail, files)

    async def _follow(self, job: _Job) -> tuple[str, Results, str | None, dict]:
        import openai

        failures, status = 0, None
        while True:
            try:
                batch = await self._call(f"polling job {job.batch_id}", self._client.batches.retrieve(job.batch_id))
                status = getattr(batch, "status", None)
                if status in ENDED:
                    results, files = await self._results(job, batch)
                    return status, results, _errors(batch), files
                if status not in RUNNING:
                    raise _FailedPoll(f"job {job.batch_id} is in no state a batch job has: {_short(repr(status), 80)}")
                failures = 0
            except openai.NotFoundError as exc:
                raise _JobEnded(
                    "lost", self.scrub(f"the endpoint does not know job {job.batch_id}: {_said(exc)}")
                ) from None  # its message already says what the endpoint said
            except _JobEnded:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed poll (or download): tried again, up to a bound
                failures += 1
                last = self.scrub(f"poll: {exc if isinstance(exc, _FailedPoll) else _said(exc)}")
                self._store.update_batch_job(job.id, detail=last)
                if failures >= self.poll_failures:
                    await self._cancel(job)  # it may run on where we cannot see it: not paid for twice
                    raise _JobEnded("lost", f"{failures} failed polls in a row; last: {last}") from None
            waited = time.time() - job.created
            if waited >= self.job_timeout:
                await self._cancel(job)
                raise _JobEnded(
                    "timed_out",
                    f"still {_short(str(status), 40)} {waited:.0f} s after it was submitted, "
                    f"past the {self.job_timeout:g} s a job may take (cancelled)",
                )
            await asyncio.sleep(self.poll_seconds)

    async def _results(self, job: _Job, batch) -> tuple[Results, dict]:
        """The ended job's output and error files, read line by line (a failed download is a failed poll)."""
        budgets = {custom_id: self._budgets.get(custom_id) or line_budget(None) for custom_id in job.custom_ids}
        cap = file_cap(budgets)
        results, files = Results(), {}
        for column, name in (("output_file_id", "output file"), ("error_file_id", "error file")):
            file_id = getattr(batch, column, None)
            if file_id is None or file_id == "":
                continue
            if not _usable_id(file_id):
                raise _FailedPoll(f"job {job.batch_id} names its {name} {_short(repr(file_id), 80)}")
            try:
                text = await self._call(f"downloading {file_id}", self._download(file_id, cap), cap)
            except _TooLarge as exc:
                raise _JobEnded(
                    "failed",
                    f"its {name} {file_id} holds more than {cap} bytes, more than its "
                    f"{len(budgets)} requests can need: not read ({exc})",
                ) from None
            except Exception as exc:  # noqa: BLE001
                raise _FailedPoll(f"downloading its {name} {file_id}: {_said(exc)}") from exc
            read_results(text, budgets, results, f"{name} {file_id}")
            files[column] = file_id
        return results, files

    async def _download(self, file_id: str, cap: int) -> str:
        """The file's text, read (decompressed) only up to `cap` bytes."""
        chunks, size = [], 0
        async with self._client.files.with_streaming_response.content(file_id) as response:
            async for chunk in response.iter_bytes():
                size += len(chunk)
                if size > cap:
                    raise _TooLarge(f"{size} bytes read when it was stopped")
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")

    async def _cancel(self, job: _Job) -> None:
        """Ask the endpoint to stop a job given up on (it may not listen: nothing waits on it)."""
        try:
            await self._call(f"cancelling job {job.batch_id}", self._client.batches.cancel(job.batch_id))
        except Exception:  # noqa: BLE001 - best effort
            pass

    def _settle(self, job: _Job, status: str, results: Results, detail: str | None, files: dict) -> None:
        if results.warnings:
            ignored = f"{len(results.warnings)} result line(s) ignored: {results.warnings[0]}" + (
                f" (and {len(results.warnings) - 1} more)" if len(results.warnings) > 1 else ""
            )
            detail = f"{detail}; {ignored}" if detail else ignored
            self._warn(f"batch job {job.batch_id}: {ignored}")
        answered = {cid: result for cid, result in results.answered.items() if result[0] not in RETRYABLE_STATUS}
        self._store.save_batch_results(job.id, answered)
        self._store.update_batch_job(job.id, status=status, detail=detail, **files)
        del self._jobs[job.id]
        reason = f"batch job {job.batch_id} ended {status}" + (f" ({_short(detail, 300)})" if detail else "")
        for custom_id in job.custom_ids:
            self._job_of.pop(custom_id, None)
            waiting = self._waiting.get(custom_id)
            if waiting is None or waiting.future.done():
                continue  # asked for in an earlier session, not (yet) in this one: its result is stored
            if custom_id in answered:
                waiting.future.set_result(answered[custom_id])
            elif custom_id in results.bad:  # that request's own failure: not stored, so a later run may ask again
                waiting.future.set_result(_failure(f"batch job {job.batch_id}: {results.bad[custom_id]}"))
            else:
                line = results.answered.get(custom_id)
                self._retry(waiting, _describe_line(*line) if line else f"{reason} without an answer for it")
        self._poke()

    def _settle_missing(self, job: _Job, reason: str) -> None:
        for custom_id in job.custom_ids:
            waiting = self._waiting.get(custom_id)
            if waiting is not None and not waiting.future.done():
                self._retry(waiting, reason)
        self._poke()

    def _retry(self, waiting: Waiting, error: str) -> None:
        """Into the next round, or back to the caller as an error once the rounds are spent."""
        waiting.rounds += 1
        waiting.last_error = error
        if self._broken:
            waiting.future.set_result(_failure(f"{self._broken}; last: {error}"))
        elif waiting.rounds >= self.max_rounds:
            waiting.future.set_result(_failure(f"batch: no answer after {waiting.rounds} jobs; last: {error}"))
        else:
            self._queue.append(waiting)

    # ------------------------------------------------------------ tasks that stop

    def _watcher_stopped(self, job: _Job, task: asyncio.Task) -> None:
        """A watcher that ended without settling its job (a fault of its own, or cancelled): every request it held
        gets an error now instead of waiting for ever."""
        if job.id not in self._jobs:
            return
        del self._jobs[job.id]
        reason = "was stopped" if task.cancelled() else f"failed: {_said(task.exception())}"
        reason = self.scrub(f"batch: following job {job.batch_id} {reason}")
        if not self._closing:
            try:
                self._store.update_batch_job(job.id, status="failed", detail=reason)
            except Exception:  # noqa: BLE001 - the store itself may be what failed
                pass
        for custom_id in job.custom_ids:
            self._job_of.pop(custom_id, None)
            waiting = self._waiting.get(custom_id)
            if waiting is not None and not waiting.future.done():
                waiting.future.set_result(_failure(reason))
        self._poke()

    def _collector_stopped(self, task: asyncio.Task) -> None:
        """Nothing more can be submitted: every request waiting now or later gets an error."""
        if self._closing:
            return
        reason = "was stopped" if task.cancelled() else f"failed: {_said(task.exception())}"
        self._broken = self.scrub(f"batch: submitting jobs {reason}")
        self._queue = []
        for waiting in list(self._waiting.values()):
            if not waiting.future.done() and waiting.custom_id not in self._job_of:
                waiting.future.set_result(_failure(self._broken))

    def _warn(self, text: str) -> None:
        print(f"warning: {self.scrub(text)}", file=sys.stderr, flush=True)


class _TooLarge(Exception):
    pass


# Job descriptions, list pages and upload receipts are a few KB: each reply is read unencoded and at most REPLY_CAP
# bytes of it, so that a reply that never ends or a gzip bomb is a failed call, not a run out of memory.
def _is_download(request: httpx2.Request) -> bool:
    return "/files/" in request.url.path and request.url.path.endswith("/content")


async def _ask_plain(request: httpx2.Request) -> None:
    if not _is_download(request):
        request.headers["Accept-Encoding"] = "identity"


async def _cap_reply(response: httpx2.Response) -> None:
    if _is_download(response.request):
        return
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise httpx2.DecodingError(f"a reply encoded {encoding!r}, which was not asked for", request=response.request)
    response.stream = _CappedStream(response.stream, response.request)


class _CappedStream(httpx2.AsyncByteStream):
    def __init__(self, inner, request: httpx2.Request):
        self._inner, self._request = inner, request

    async def __aiter__(self):
        size = 0
        async for chunk in self._inner:
            size += len(chunk)
            if size > REPLY_CAP:
                raise httpx2.DecodingError(f"a reply longer than {REPLY_CAP} bytes", request=self._request)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _usable_id(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 200 and value.isprintable() and "/" not in value


def _epoch(stored: str | None) -> float:
    try:
        return datetime.fromisoformat(stored).replace(tzinfo=UTC).timestamp() if stored else time.time()
    except ValueError:
        return time.time()


def _said(exc: BaseException | None) -> str:
    said = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    cause = exc.__cause__ if exc is not None else None
    if cause is not None and str(cause) and str(cause) not in said:  # openai's "Connection error." says little
        said += f" ({type(cause).__name__}: {cause})"
    return _short(said, 500)


def _short(text: str, limit: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "…"


def _failure(message: str) -> tuple[int, dict]:
    return 502, {"error": {"message": message, "type": "batch_error"}}


def _describe_line(status: int | None, body: dict | None) -> str | None:
    if status is None:
        return None
    error = (body or {}).get("error") or {}
    return f"HTTP {status}: {error.get('code') or ''} {error.get('message') or ''}".strip()


def _errors(batch) -> str | None:
    """A failed job's own errors (validation), as the endpoint words them, kept short."""
    errors = getattr(batch, "errors", None)
    data = errors.get("data") if isinstance(errors, dict) else getattr(errors, "data", None)
    if not isinstance(data, list) or not data:
        return None
    said = [
        error.get("message") if isinstance(error, dict) else getattr(error, "message", error) for error in data[:20]
    ]
    return _short(json.dumps([_short(str(message), 300) for message in said], ensure_ascii=False), 2000)


def _response(request: httpx2.Request, status: int, body: dict) -> httpx2.Response:
    return httpx2.Response(status, json=body, request=request)


def _error_response(request: httpx2.Request, status: int, message: str) -> httpx2.Response:
    return _response(request, status, {"error": {"message": message, "type": "batch_error"}})
