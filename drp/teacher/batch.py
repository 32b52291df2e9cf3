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
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from drp.redaction import scrub
from drp.teacher.scope import current_call

ENDPOINT = "/v1/chat/completions"
ENDED = ("completed", "failed", "expired", "cancelled")
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
BATCH_API_TIMEOUT = 120.0  # seconds per file/job API call when --teacher-timeout is not given
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
    task: asyncio.Task | None = field(default=None, repr=False)


class BatchTransport(httpx2.AsyncBaseTransport):
    def __init__(self, settings, folder: Path, run_id: str, *, poll_seconds: float = 30.0, settle_seconds: float = 0.2,
                 max_rounds: int = 3):
        self.settings = settings
        self.folder, self.run_id = Path(folder), run_id
        self.poll_seconds, self.settle_seconds, self.max_rounds = poll_seconds, settle_seconds, max_rounds
        self._store = None
        self._client = None
        self._queue: list[Waiting] = []
        self._jobs: dict[str, _Job] = {}  # open jobs: submitted (or found on resume), not yet settled
        self._job_of: dict[str, str] = {}  # custom_id → open job
        self._waiting: dict[str, Waiting] = {}  # custom_id → the request waiting for it (queued or in a job)
        self._occurrences: dict[tuple, int] = {}
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
        job_id = self._job_of.get(custom_id)
        if job_id is None:
            self._queue.append(waiting)
            self._poke()
        try:
            status, result = await future
        finally:
            self._waiting.pop(custom_id, None)
            self._waiting_traces[trace_id] -= 1
            if not self._waiting_traces[trace_id]:
                del self._waiting_traces[trace_id]
        return _response(request, status, result)

    async def aclose(self) -> None:
        tasks = [job.task for job in self._jobs.values() if job.task] + [t for t in (self._collector, self._starting) if t]
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
        self._client = openai.AsyncOpenAI(base_url=options["base_url"], api_key=options["api_key"],
                                          timeout=options["timeout"] or BATCH_API_TIMEOUT,
                                          max_retries=options["max_retries"])
        self._wake = asyncio.Event()
        await self._resume_jobs()
        self._collector = asyncio.create_task(self._collect())

    async def _resume_jobs(self) -> None:
        """Jobs an earlier session submitted and never settled: wait for them again (or adopt a job whose
        submission was cut short before its id was stored)."""
        for row in self._store.batch_jobs(statuses=("submitting", "submitted")):
            batch_id = row["batch_id"] or await self._find_submission(row["id"])
            if batch_id is None:
                self._store.update_batch_job(row["id"], status="abandoned", detail="never created")
                continue
            self._store.update_batch_job(row["id"], batch_id=batch_id, status="submitted")
            self._open(_Job(row["id"], batch_id, self._store.batch_job_requests(row["id"]), row["round"]))

    async def _find_submission(self, job_id: str) -> str | None:
        async for batch in self._client.batches.list(limit=100):
            if (batch.metadata or {}).get("drp_job") == job_id:
                return batch.id
        return None

    def _open(self, job: _Job) -> None:
        self._jobs[job.id] = job
        for custom_id in job.custom_ids:
            self._job_of[custom_id] = job.id
        job.task = asyncio.create_task(self._watch(job))

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
        self._store.add_batch_job(job_id, round_number, [
            {"custom_id": r.custom_id, "trace_id": r.trace_id, "node": r.node, "attempt": r.attempt} for r in requests
        ])
        lines = "".join(json.dumps({"custom_id": r.custom_id, "method": "POST", "url": ENDPOINT, "body": r.body},
                                   ensure_ascii=False) + "\n" for r in requests)
        job = _Job(job_id, None, [r.custom_id for r in requests], round_number)
        try:
            uploaded = await self._client.files.create(file=(f"{job_id}.jsonl", lines.encode()), purpose="batch")
            batch = await self._client.batches.create(
                input_file_id=uploaded.id, endpoint=ENDPOINT, completion_window="24h",
                metadata={"drp_run": self.run_id[:500], "drp_job": job_id},
            )
        except Exception as exc:  # noqa: BLE001 - the submission failed: those requests fail (or retry) like a job
            self._store.update_batch_job(job_id, status="failed", detail=self.scrub(f"submission: {exc}"))
            self._settle_missing(job, f"the batch job could not be submitted: {self.scrub(str(exc))}")
            return
        self._store.update_batch_job(job_id, batch_id=batch.id, input_file_id=uploaded.id, status="submitted")
        self.jobs_submitted += 1
        self._open(_Job(job_id, batch.id, job.custom_ids, round_number))

    async def _watch(self, job: _Job) -> None:
        """Poll a job until it ends, then hand each request its line."""
        while True:
            try:
                batch = await self._client.batches.retrieve(job.batch_id)
            except Exception as exc:  # noqa: BLE001 - a failed poll is tried again at the next interval
                self._store.update_batch_job(job.id, detail=self.scrub(f"poll: {exc}"))
                batch = None
            if batch is not None and batch.status in ENDED:
                break
            await asyncio.sleep(self.poll_seconds)
        results = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                content = await self._client.files.content(file_id)
                results.update(_lines(content.text))
        answered = {cid: result for cid, result in results.items() if result[0] not in RETRYABLE_STATUS}
        self._store.save_batch_results(job.id, answered)
        self._store.update_batch_job(job.id, status=batch.status, output_file_id=batch.output_file_id,
                                     error_file_id=batch.error_file_id, detail=_errors(batch))
        del self._jobs[job.id]
        reason = f"batch job {batch.id} ended {batch.status}"
        for custom_id in job.custom_ids:
            self._job_of.pop(custom_id, None)
            waiting = self._waiting.get(custom_id)
            if waiting is None:
                continue  # asked for in an earlier session, not (yet) in this one: its result is stored
            if custom_id in answered:
                waiting.future.set_result(answered[custom_id])
            else:
                status, body = results.get(custom_id, (None, None))
                self._retry(waiting, _describe_line(status, body) or f"{reason} without an answer for it")
        self._poke()

    def _settle_missing(self, job: _Job, reason: str) -> None:
        for custom_id in job.custom_ids:
            waiting = self._waiting.get(custom_id)
            if waiting is not None:
                self._retry(waiting, reason)
        self._poke()

    def _retry(self, waiting: Waiting, error: str) -> None:
        """Into the next round, or back to the caller as an error once the rounds are spent."""
        waiting.rounds += 1
        waiting.last_error = error
        if waiting.rounds >= self.max_rounds:
            waiting.future.set_result((502, {"error": {
                "message": f"batch: no answer after {waiting.rounds} jobs; last: {error}", "type": "batch_error"}}))
        else:
            self._queue.append(waiting)


def _lines(text: str) -> dict[str, tuple[int, dict]]:
    """custom_id → (HTTP status, body) from an output or error file (error lines without a response: status 500)."""
    found = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        response = record.get("response") or {}
        if response.get("status_code") is not None:
            found[record["custom_id"]] = (int(response["status_code"]), response.get("body") or {})
        else:
            error = record.get("error") or {}
            found[record["custom_id"]] = (500, {"error": {"message": error.get("message") or "no response",
                                                          "code": error.get("code"), "type": "batch_error"}})
    return found


def _describe_line(status: int | None, body: dict | None) -> str | None:
    if status is None:
        return None
    error = (body or {}).get("error") or {}
    return f"HTTP {status}: {error.get('code') or ''} {error.get('message') or ''}".strip()


def _errors(batch) -> str | None:
    errors = getattr(batch, "errors", None)
    data = getattr(errors, "data", None) if errors is not None else None
    return json.dumps([getattr(e, "message", str(e)) for e in data]) if data else None


def _response(request: httpx2.Request, status: int, body: dict) -> httpx2.Response:
    return httpx2.Response(status, json=body, request=request)


def _error_response(request: httpx2.Request, status: int, message: str) -> httpx2.Response:
    return _response(request, status, {"error": {"message": message, "type": "batch_error"}})
