"""A real HTTP server on loopback with the OpenAI Files and Batches endpoints, answering each batch line from a
script (the same responders as tests/scripted_teacher.py), for drp's batch mode.

    POST /v1/files (multipart, purpose=batch) · GET /v1/files/{id}/content
    POST /v1/batches · GET /v1/batches/{id} · GET /v1/batches

A job answers when it is first looked at after `hold` (a threading.Event, default: none) is set. `outcome(job)`
decides how it ends: completed (every line answered), or `Outcome(status, expire=…, fail=…)` for expired, failed or
partly failed jobs. Each line's reply comes from `responder(body)`, exactly as a chat request to ScriptedTeacher.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from scripted_teacher import Error, ScriptedTeacher, Text


@dataclass
class Outcome:
    status: str = "completed"  # completed | expired | failed | cancelled
    expire: Callable[[str], bool] = lambda custom_id: False  # lines left unanswered (to the error file) by this end
    fail: dict = field(default_factory=dict)  # custom_id → HTTP status of its line in the output file
    errors: list | None = None  # a failed job's validation errors


@dataclass
class Job:
    index: int
    id: str
    input_file_id: str
    metadata: dict
    lines: list[dict]
    created_at: int
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list | None = None
    polls: int = 0


class ScriptedBatchAPI:
    def __init__(self, responder, outcome: Callable[[Job], Outcome] | None = None, hold: threading.Event | None = None):
        self.responder = responder
        self.outcome = outcome or (lambda job: Outcome())
        self.hold = hold
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, Job] = {}
        self.answered: list[str] = []  # custom_ids answered, in order (a line answered twice shows up twice)
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._chat = ScriptedTeacher(responder)  # builds chat.completion bodies; never started
        self._server = None
        self._thread = None

    # --- lifecycle

    def __enter__(self) -> ScriptedBatchAPI:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.api = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what the handler calls

    def add_file(self, content: bytes) -> str:
        with self._lock:
            file_id = f"file-{next(self._ids)}"
            self.files[file_id] = content
        return file_id

    def create_job(self, request: dict) -> Job:
        lines = [json.loads(line) for line in self.files[request["input_file_id"]].decode().splitlines() if line.strip()]
        with self._lock:
            job = Job(len(self.jobs), f"batch_{next(self._ids)}", request["input_file_id"], request.get("metadata") or {},
                      lines, int(time.time()))
            self.jobs[job.id] = job
        return job

    def look_at(self, job: Job) -> Job:
        with self._lock:
            job.polls += 1
            if job.status in ("validating", "in_progress") and (self.hold is None or self.hold.is_set()):
                self._finish(job, self.outcome(job))
            elif job.status == "validating":
                job.status = "in_progress"
        return job

    def _finish(self, job: Job, outcome: Outcome) -> None:
        output, errors = [], []
        for line in job.lines:
            custom_id = line["custom_id"]
            if outcome.status == "failed" or outcome.expire(custom_id):
                code = "batch_expired" if outcome.status == "expired" else "batch_failed"
                errors.append({"id": f"req_{next(self._ids)}", "custom_id": custom_id, "response": None,
                               "error": {"code": code, "message": f"this request was not run ({outcome.status})"}})
                continue
            status = outcome.fail.get(custom_id)
            if status is not None:
                output.append({"id": f"req_{next(self._ids)}", "custom_id": custom_id, "error": None, "response": {
                    "status_code": status, "request_id": "x",
                    "body": {"error": {"message": f"scripted {status}", "type": "server_error"}}}})
                continue
            reply = self.responder(line["body"])
            if isinstance(reply, str):
                reply = Text(reply)
            if isinstance(reply, Error):
                output.append({"id": f"req_{next(self._ids)}", "custom_id": custom_id, "error": None, "response": {
                    "status_code": reply.status, "request_id": "x", "body": reply.body or {"error": {"message": "x"}}}})
                continue
            self.answered.append(custom_id)
            output.append({"id": f"req_{next(self._ids)}", "custom_id": custom_id, "error": None, "response": {
                "status_code": 200, "request_id": "x", "body": self._chat._completion(line["body"], reply)}})
        if output:
            job.output_file_id = self.add_file("".join(json.dumps(o) + "\n" for o in output).encode())
        if errors:
            job.error_file_id = self.add_file("".join(json.dumps(e) + "\n" for e in errors).encode())
        job.status = outcome.status
        job.errors = outcome.errors

    def describe(self, job: Job) -> dict:
        return {
            "id": job.id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": (
                {"object": "list", "data": [{"code": "invalid", "message": m} for m in job.errors]} if job.errors else None),
            "input_file_id": job.input_file_id, "completion_window": "24h", "status": job.status,
            "output_file_id": job.output_file_id, "error_file_id": job.error_file_id, "created_at": job.created_at,
            "request_counts": {"total": len(job.lines), "completed": 0, "failed": 0}, "metadata": job.metadata,
        }

    def requests_sent(self) -> list[str]:
        """Every custom_id that went out, in job order (one that went out twice appears twice)."""
        return [line["custom_id"] for job in self.jobs.values() for line in job.lines]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def _send(self, status: int, payload) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if not isinstance(payload, bytes) else "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_POST(self):
        api: ScriptedBatchAPI = self.server.api
        raw = self._body()
        path = self.path.split("?")[0].rstrip("/")
        if path == "/v1/files":
            message = email.parser.BytesParser(policy=email.policy.default).parsebytes(
                b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + raw)
            parts = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
            assert parts["purpose"].get_content().strip() == "batch", "batch input files have purpose=batch"
            content = parts["file"].get_payload(decode=True)
            file_id = api.add_file(content)
            self._send(200, {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time()),
                             "filename": parts["file"].get_filename(), "purpose": "batch", "status": "processed"})
        elif path == "/v1/batches":
            self._send(200, api.describe(api.create_job(json.loads(raw))))
        else:
            self._send(404, {"error": {"message": f"no route POST {self.path}"}})

    def do_GET(self):
        api: ScriptedBatchAPI = self.server.api
        path = self.path.split("?")[0].rstrip("/")
        parts = path.split("/")
        if path == "/v1/batches":
            data = [api.describe(job) for job in reversed(list(api.jobs.values()))]
            self._send(200, {"object": "list", "data": data, "has_more": False,
                             "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None})
        elif len(parts) == 4 and parts[2] == "batches" and parts[3] in api.jobs:
            self._send(200, api.describe(api.look_at(api.jobs[parts[3]])))
        elif len(parts) == 5 and parts[2] == "files" and parts[4] == "content" and parts[3] in api.files:
            self._send(200, api.files[parts[3]])
        else:
            self._send(404, {"error": {"message": f"no route GET {self.path}"}})
