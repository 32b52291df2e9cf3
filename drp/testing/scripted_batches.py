"""A real HTTP server on loopback with the OpenAI Files and Batches endpoints, answering each batch line from a
script (the same responders as drp/testing/scripted_teacher.py), for drp's batch mode.

    POST /v1/files (multipart, purpose=batch) · GET /v1/files/{id}/content
    POST /v1/batches · GET /v1/batches/{id} · GET /v1/batches

A job answers when it is first looked at after `hold` (a threading.Event, default: none) is set. `outcome(job)`
decides how it ends: completed (every line answered), or `Outcome(status, expire=…, fail=…)` for expired, failed or
partly failed jobs. Each line's reply comes from `responder(body)`, exactly as a chat request to ScriptedTeacher.

`hostile` (a Hostile) makes the endpoint misbehave: rewrite a job's output file line by line, answer a poll or a
file download with an HTTP error, a connection reset, a reply that drips, a job state that never ends, a body too
large or a gzip bomb. POST /v1/batches/{id}/cancel is recorded in `cancels`.
"""

from __future__ import annotations

import email.parser
import email.policy
import gzip
import itertools
import json
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from drp.testing.scripted_teacher import Error, ScriptedTeacher, Text


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


RESET = "reset"  # the connection is reset (RST) halfway through the reply
DRIP = "drip"  # 200 and a long Content-Length, then one byte now and then


@dataclass
class Gzip:
    """A body sent gzip-compressed: `size` bytes of `fill` once decompressed."""

    size: int
    fill: bytes = b"0"


@dataclass
class Junk:
    """A body of `size` bytes of junk, streamed (what the client read before it hung up: `Junk.sent`)."""

    size: int


@dataclass
class Hostile:
    """How the endpoint misbehaves; a hook that answers None leaves that reply alone.

    lines(job, records) → the output file's lines: records (dicts, written as JSON) or raw strings, as they are.
    poll(job) → an HTTP status, RESET, DRIP, or a job state to report instead of looking at the job.
    download(job, file_id, attempt) → an HTTP status, RESET, DRIP, bytes, Gzip(…) or Junk(…); attempt counts from 1.
    """

    lines: Callable | None = None
    poll: Callable | None = None
    download: Callable | None = None


class ScriptedBatchAPI:
    def __init__(
        self,
        responder,
        outcome: Callable[[Job], Outcome] | None = None,
        hold: threading.Event | None = None,
        hostile: Hostile | None = None,
    ):
        self.responder = responder
        self.outcome = outcome or (lambda job: Outcome())
        self.hold = hold
        self.hostile = hostile or Hostile()
        self.cancels: list[str] = []  # job ids drp asked to cancel
        self.downloads: dict[str, int] = {}  # file id → downloads tried
        self.junk_sent = 0  # bytes of Junk bodies written before the client hung up
        self.file_job: dict[str, Job] = {}  # result file id → its job
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
        self._server = _Server(("127.0.0.1", 0), _Handler)
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
        lines = [
            json.loads(line) for line in self.files[request["input_file_id"]].decode().splitlines() if line.strip()
        ]
        with self._lock:
            job = Job(
                len(self.jobs),
                f"batch_{next(self._ids)}",
                request["input_file_id"],
                request.get("metadata") or {},
                lines,
                int(time.time()),
            )
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
                errors.append(
                    {
                        "id": f"req_{next(self._ids)}",
                        "custom_id": custom_id,
                        "response": None,
                        "error": {"code": code, "message": f"this request was not run ({outcome.status})"},
                    }
                )
                continue
            status = outcome.fail.get(custom_id)
            if status is not None:
                output.append(
                    {
                        "id": f"req_{next(self._ids)}",
                        "custom_id": custom_id,
                        "error": None,
                        "response": {
                            "status_code": status,
                            "request_id": "x",
                            "body": {"error": {"message": f"scripted {status}", "type": "server_error"}},
                        },
                    }
                )
                continue
            reply = self.responder(line["body"])
            if isinstance(reply, str):
                reply = Text(reply)
            if isinstance(reply, Error):
                output.append(
                    {
                        "id": f"req_{next(self._ids)}",
                        "custom_id": custom_id,
                        "error": None,
                        "response": {
                            "status_code": reply.status,
                            "request_id": "x",
                            "body": reply.body or {"error": {"message": "x"}},
                        },
                    }
                )
                continue
            self.answered.append(custom_id)
            output.append(
                {
                    "id": f"req_{next(self._ids)}",
                    "custom_id": custom_id,
                    "error": None,
                    "response": {
                        "status_code": 200,
                        "request_id": "x",
                        "body": self._chat._completion(line["body"], reply),
                    },
                }
            )
        if self.hostile.lines is not None:
            output = self.hostile.lines(job, output)
        if output:
            job.output_file_id = self.add_file(
                "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in output).encode()
            )
            self.file_job[job.output_file_id] = job
        if errors:
            job.error_file_id = self.add_file("".join(json.dumps(e) + "\n" for e in errors).encode())
            self.file_job[job.error_file_id] = job
        job.status = outcome.status
        job.errors = outcome.errors

    def describe(self, job: Job) -> dict:
        return {
            "id": job.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": (
                {"object": "list", "data": [{"code": "invalid", "message": m} for m in job.errors]}
                if job.errors
                else None
            ),
            "input_file_id": job.input_file_id,
            "completion_window": "24h",
            "status": job.status,
            "output_file_id": job.output_file_id,
            "error_file_id": job.error_file_id,
            "created_at": job.created_at,
            "request_counts": {"total": len(job.lines), "completed": 0, "failed": 0},
            "metadata": job.metadata,
        }

    def requests_sent(self) -> list[str]:
        """Every custom_id that went out, in job order (one that went out twice appears twice)."""
        return [line["custom_id"] for job in self.jobs.values() for line in job.lines]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hung up on a reply it gave up on (drp does, at its deadlines and caps)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def _send(self, status: int, payload) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header(
            "Content-Type", "application/json" if not isinstance(payload, bytes) else "application/octet-stream"
        )
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
                b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + raw
            )
            parts = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
            assert parts["purpose"].get_content().strip() == "batch", "batch input files have purpose=batch"
            content = parts["file"].get_payload(decode=True)
            file_id = api.add_file(content)
            self._send(
                200,
                {
                    "id": file_id,
                    "object": "file",
                    "bytes": len(content),
                    "created_at": int(time.time()),
                    "filename": parts["file"].get_filename(),
                    "purpose": "batch",
                    "status": "processed",
                },
            )
        elif path == "/v1/batches":
            self._send(200, api.describe(api.create_job(json.loads(raw))))
        elif path.startswith("/v1/batches/") and path.endswith("/cancel") and path.split("/")[3] in api.jobs:
            job = api.jobs[path.split("/")[3]]
            api.cancels.append(job.id)
            self._send(200, {**api.describe(job), "status": "cancelling"})
        else:
            self._send(404, {"error": {"message": f"no route POST {self.path}"}})

    def _misbehave(self, reply, content: bytes = b"") -> None:
        api: ScriptedBatchAPI = self.server.api
        if isinstance(reply, int):
            self._send(reply, {"error": {"message": f"scripted {reply}", "type": "invalid_request_error"}})
        elif isinstance(reply, bytes):
            self._send(200, reply)
        elif isinstance(reply, Gzip):
            body = gzip.compress(reply.fill * reply.size, compresslevel=1)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self._write(body)
        elif isinstance(reply, Junk):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(reply.size))
            self.end_headers()
            chunk = b"junk " * 13107  # 64 KiB
            left = reply.size
            while left > 0:
                if not self._write(chunk[:left]):
                    break
                api.junk_sent += min(left, len(chunk))
                left -= len(chunk)
        elif reply == RESET:
            content = content or json.dumps({"id": "x", "object": "batch", "status": "in_progress"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self._write(content[: len(content) // 2])
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif reply == DRIP:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            for _ in range(2000):
                if not self._write(b" "):
                    break
                time.sleep(0.05)
            self.close_connection = True
        else:
            raise ValueError(f"no such misbehaviour: {reply!r}")

    def _write(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except OSError:
            self.close_connection = True
            return False

    def do_GET(self):
        api: ScriptedBatchAPI = self.server.api
        path = self.path.split("?")[0].rstrip("/")
        parts = path.split("/")
        if path == "/v1/batches":
            data = [api.describe(job) for job in reversed(list(api.jobs.values()))]
            self._send(
                200,
                {
                    "object": "list",
                    "data": data,
                    "has_more": False,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                },
            )
        elif len(parts) == 4 and parts[2] == "batches" and parts[3] in api.jobs:
            job = api.jobs[parts[3]]
            reply = api.hostile.poll(job) if api.hostile.poll else None
            if reply is None:
                self._send(200, api.describe(api.look_at(job)))
            elif isinstance(reply, str) and reply not in (RESET, DRIP):
                job.polls += 1
                self._send(200, {**api.describe(job), "status": reply})
            else:
                job.polls += 1
                self._misbehave(reply)
        elif len(parts) == 5 and parts[2] == "files" and parts[4] == "content" and parts[3] in api.files:
            file_id = parts[3]
            with api._lock:
                api.downloads[file_id] = attempt = api.downloads.get(file_id, 0) + 1
            job = api.file_job.get(file_id)
            reply = api.hostile.download(job, file_id, attempt) if api.hostile.download and job else None
            if reply is None:
                self._send(200, api.files[file_id])
            else:
                self._misbehave(reply, api.files[file_id])
        else:
            self._send(404, {"error": {"message": f"no route GET {self.path}"}})
