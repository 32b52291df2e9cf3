"""A real OpenAI-compatible HTTP server on loopback that answers from a script.

Tests and benchmarks point the teacher client at ``ScriptedTeacher.url`` and decide, per request, what the
"teacher" replies: text, a tool call, an HTTP error, a hang, a dropped connection, raw bytes or an endless body.
Chat requests (``/v1/chat/completions``) and raw completions (``/v1/completions``, the legacy API;
``completions=False`` answers 404 there, as a chat-only server does) go to the same responder: a raw request has
``prompt`` instead of ``messages``. Everything goes over real sockets, so client retries, timeouts and connection
pooling are exercised exactly as against a real endpoint.

    with ScriptedTeacher(lambda req: Text('{"ok": true}'), latency=0.1) as teacher:
        client = OpenAI(base_url=teacher.url, api_key="test")
        ...
        assert len(teacher.requests) == 1
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# ---------------------------------------------------------------- replies a responder may return


@dataclass
class Text:
    """A normal assistant message. Token counts default to rough word counts."""

    content: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = "stop"
    usage: bool = True  # False: the reply carries no `usage` (some servers leave it out)


@dataclass
class ToolCall:
    """An assistant message with one function tool call (``arguments`` may be a malformed string on purpose)."""

    name: str
    arguments: dict | str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class Error:
    """An HTTP error with an OpenAI-style body, e.g. ``Error(429, headers={"Retry-After": "0.2"})``."""

    status: int
    body: dict | None = None
    headers: dict | None = None


@dataclass
class Hang:
    """Sleep before answering (to trip client timeouts), then send ``then`` if the client is still there."""

    seconds: float
    then: Any = field(default_factory=lambda: Text("late reply"))


@dataclass
class Drip:
    """Send the headers at once, then the body of ``then`` one byte every ``interval`` seconds: a server that is
    never silent long enough for a read timeout, yet never finishes."""

    interval: float = 2.0
    then: Any = field(default_factory=lambda: Text("late reply"))


@dataclass
class Drop:
    """Close the connection without sending any response."""


@dataclass
class Raw:
    """Exactly these bytes as the body (for replies that are not valid JSON at the HTTP level), with any extra
    headers (e.g. ``{"Content-Encoding": "gzip"}`` over compressed bytes)."""

    body: str | bytes
    status: int = 200
    content_type: str = "application/json"
    headers: dict | None = None


@dataclass
class Endless:
    """A 200 whose chunked body never ends: ``chunk`` again and again (every ``interval`` seconds) until the
    client goes away or the server stops."""

    chunk: bytes = b" " * 65536
    interval: float = 0.0
    start: bytes = b'{"choices": [{"message": {"role": "assistant", "content": "'


Reply = Text | ToolCall | Error | Hang | Drip | Drop | Raw | Endless
Responder = Callable[[dict], Reply]


class Sequence:
    """Responder that returns the given replies in order, then keeps repeating the last one (thread-safe)."""

    def __init__(self, *replies: Reply):
        if not replies:
            raise ValueError("Sequence needs at least one reply")
        self._replies = list(replies)
        self._next = 0
        self._lock = threading.Lock()

    def __call__(self, request: dict) -> Reply:
        with self._lock:
            reply = self._replies[min(self._next, len(self._replies) - 1)]
            self._next += 1
            return reply


# ---------------------------------------------------------------- ports


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Bound but never listening: connecting gets ECONNREFUSED, and holding the socket keeps the port from being
# reused by another server for the life of the process.
_refusing_sockets: list[socket.socket] = []


def refused_url() -> str:
    """A base URL where nothing listens, so every request fails with 'connection refused'."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    _refusing_sockets.append(s)
    return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


# ---------------------------------------------------------------- the server


def _words(text: Any) -> int:
    if isinstance(text, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return sum(_words(part.get("text", "")) for part in text if isinstance(part, dict))
    return len(str(text or "").split())


def _prompt_words(request: dict) -> int:
    if "prompt" in request:
        return _words(request["prompt"])
    return sum(_words(m.get("content")) for m in request.get("messages") or [] if isinstance(m, dict))


_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}

_CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung handler never blocks stop()
    request_queue_size = 512  # listen backlog: bursts of 64+ concurrent connects must not be refused
    allow_reuse_address = True
    teacher: ScriptedTeacher

    def process_request(self, request, client_address):
        self.teacher._connections.add(request)  # so that kill() can drop it
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.teacher._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # A client that timed out and went away is expected here, not a server fault worth a traceback.
        import sys

        if isinstance(sys.exc_info()[1], _CLIENT_GONE):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the openai/httpx client expects
    # Headers and body go out as two writes: with Nagle's algorithm on, the body waits for the client's delayed
    # ACK of the headers (up to 40 ms on Linux), which real servers (uvicorn, vLLM, llama.cpp) never add.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format, *args):  # quiet: tests read teacher.requests instead
        pass

    # --- plumbing

    def _send(
        self, status: int, payload: Any, headers: dict | None = None, content_type: str = "application/json"
    ) -> None:
        body = (
            payload
            if isinstance(payload, bytes)
            else (payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
        )
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, str(value))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except _CLIENT_GONE:
            self.close_connection = True

    def _drip(self, request: dict, reply: Drip) -> None:
        body = json.dumps(self.server.teacher._completion(request, reply.then)).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if self.server.teacher._sleep(reply.interval):
                    break
        except _CLIENT_GONE:
            pass
        self.close_connection = True

    def _endless(self, reply: Endless) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = reply.start
            while True:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                chunk = reply.chunk
                if self.server.teacher._sleep(reply.interval):
                    break
        except _CLIENT_GONE:
            pass
        self.close_connection = True

    def _error(self, status: int, message: str, headers: dict | None = None, body: dict | None = None) -> None:
        if body is None:
            body = {
                "error": {
                    "message": message,
                    "type": _STATUS_TYPES.get(status, "api_error"),
                    "param": None,
                    "code": None,
                }
            }
        self._send(status, body, headers)

    # --- routes

    def do_GET(self):
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            teacher = self.server.teacher
            self._send(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": name, "object": "model", "created": 0, "owned_by": "scripted-teacher"}
                        for name in teacher.models
                    ],
                },
            )
        else:
            self._error(404, f"no route GET {self.path}")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.rstrip("/")
        teacher = self.server.teacher
        raw_completion = path in ("/v1/completions", "/completions") and teacher.completions
        if path not in ("/v1/chat/completions", "/chat/completions") and not raw_completion:
            self._error(404, f"no route POST {self.path}")
            return
        try:
            request = json.loads(raw or b"{}")
        except ValueError as exc:
            self._error(400, f"request body is not JSON: {exc}")
            return
        teacher._record(request)
        try:
            reply = teacher.responder(request)
        except Exception as exc:  # a broken script should show up as a loud 500, not a hung client
            teacher.errors.append(exc)
            self._error(500, f"responder raised {type(exc).__name__}: {exc}")
            return
        if teacher.latency:
            teacher._sleep(teacher.latency)
        if teacher.killed:  # died while this request was in progress: no reply, the connection just closes
            self.close_connection = True
            return
        self._reply(request, reply)

    def _reply(self, request: dict, reply: Reply) -> None:
        if isinstance(reply, str):
            reply = Text(reply)
        if isinstance(reply, Hang):
            if self.server.teacher._sleep(reply.seconds):  # stopping: give up on this client
                self.close_connection = True
                return
            self._reply(request, reply.then)
        elif isinstance(reply, Drip):
            self._drip(request, reply)
        elif isinstance(reply, Drop):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif isinstance(reply, Error):
            self._error(reply.status, f"scripted error {reply.status}", reply.headers, reply.body)
        elif isinstance(reply, Raw):
            self._send(reply.status, reply.body, reply.headers, content_type=reply.content_type)
        elif isinstance(reply, Endless):
            self._endless(reply)
        elif isinstance(reply, Text) and "prompt" in request:
            self._send(200, self.server.teacher._text_completion(request, reply))
        elif isinstance(reply, (Text, ToolCall)):
            self._send(200, self.server.teacher._completion(request, reply))
        else:
            self._error(500, f"responder returned an unknown reply: {reply!r}")


class ScriptedTeacher:
    """OpenAI-compatible server on 127.0.0.1 whose replies come from ``responder(request_body)``."""

    def __init__(
        self,
        responder: Responder,
        latency: float = 0.0,
        port: int = 0,
        models: tuple[str, ...] = ("scripted-teacher",),
        completions: bool = True,
    ):
        self.responder = responder
        self.completions = completions
        self.latency = latency
        self.models = list(models)
        self.requests: list[dict] = []
        self.errors: list[Exception] = []  # exceptions the responder raised
        self._port = port
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self.killed = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle

    def start(self) -> ScriptedTeacher:
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self._port), _Handler)
        self._server.teacher = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="scripted-teacher", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in Hang/latency
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None

    def kill(self) -> None:
        """Die like a crashed server: stop listening and drop every open connection, requests in progress
        included (``stop`` lets kept-alive connections go on being served)."""
        self.killed = True
        self.stop()
        for connection in list(self._connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> ScriptedTeacher:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("ScriptedTeacher is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # --- used by the handler

    def _record(self, request: dict) -> None:
        with self._lock:
            self.requests.append(request)

    def _sleep(self, seconds: float) -> bool:
        """Sleep, but return early (True) when the server is stopping."""
        return self._stopping.wait(seconds)

    def _completion(self, request: dict, reply: Text | ToolCall) -> dict:
        n = next(self._ids)
        if isinstance(reply, Text):
            message = {"role": "assistant", "content": reply.content, "refusal": None}
            finish = reply.finish_reason
            completion_default = _words(reply.content)
        else:
            arguments = reply.arguments if isinstance(reply.arguments, str) else json.dumps(reply.arguments)
            message = {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {"id": f"call_{n}", "type": "function", "function": {"name": reply.name, "arguments": arguments}}
                ],
            }
            finish = "tool_calls"
            completion_default = _words(arguments)
        prompt = reply.prompt_tokens if reply.prompt_tokens is not None else _prompt_words(request)
        completion = reply.completion_tokens if reply.completion_tokens is not None else completion_default
        body = {
            "id": f"chatcmpl-scripted-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model") or self.models[0],
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }
        if not getattr(reply, "usage", True):
            del body["usage"]
        return body

    def _text_completion(self, request: dict, reply: Text) -> dict:
        """A legacy /v1/completions answer: choices[].text instead of a message."""
        n = next(self._ids)
        prompt = reply.prompt_tokens if reply.prompt_tokens is not None else _prompt_words(request)
        completion = reply.completion_tokens if reply.completion_tokens is not None else _words(reply.content)
        return {
            "id": f"cmpl-scripted-{n}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": request.get("model") or self.models[0],
            "choices": [{"index": 0, "text": reply.content, "finish_reason": reply.finish_reason, "logprobs": None}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }
