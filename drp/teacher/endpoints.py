"""Several teacher endpoints behind one client (`--teacher-url A --teacher-url B …`): the HTTP transport of
the teacher's openai client.

Each request goes to the endpoint with the fewest requests in flight. An endpoint that fails repeatedly
(refused or dropped connections, timeouts, HTTP 408/429/5xx) is set aside for a cool-down, then tried again;
while every endpoint is set aside, requests go to the one due back first, so a single endpoint is never
refused outright. A request that could not even connect is sent to another endpoint at once (it never reached
the first one); any other fault is left to the openai client's retry policy (drp.endpoint.RETRY_POLICY), whose
next try comes back here and goes to the healthiest endpoint. Which endpoint answered, and which tries failed on
the way, are noted in the request's CallScope for its call record.

Bodies are read here, whole, capped and checked (drp/teacher/bodies.py): a reply that is too large or is not a
chat completion is that endpoint's failure, and the request goes to an endpoint not yet tried (BadReply once
every endpoint was). Requests that reach no endpoint at all, enough of them in a row with no reply since, mark
the pool `down`: nothing more is sent, and the runner stops the run (drp/runner.py).

The openai client only ever sees ROUTED_BASE: every request is re-addressed here to the chosen endpoint's URL
(its path prefix, query parameters and user info included). Bytes move through aiohttp (httpx-aiohttp), which
costs less CPU per request than httpx's own connection pool at drp's concurrency.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field

import httpx2

from drp.redaction import redact_url, scrub, url_login
from drp.teacher.bodies import ERROR_BODY_BYTES, BadReply, body_limit, chat_completion, read_capped
from drp.teacher.scope import current_call

ROUTED_BASE = "http://teacher.drp.invalid/v1"
DEADLINE_ERROR = "no reply by the request's deadline"
FAILURES_BEFORE_SET_ASIDE = 3  # consecutive failed requests
COOLDOWN_SECONDS = 30.0
UNHEALTHY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
FAILURES_BEFORE_DOWN = 6  # requests in a row that reached no endpoint (at least one per endpoint)
# Faults that mean no endpoint was reached at all (refused, unresolvable, dropped before any answer).
UNREACHABLE = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.RemoteProtocolError)
ACCEPTED_ENCODINGS = "gzip, deflate"
_BODY_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class EndpointsDown(httpx2.ConnectError):
    """Every endpoint is taken for down: the request is not sent."""


@dataclass
class Endpoint:
    url: str  # as given (it may hold credentials)
    name: str  # the URL as it may be written anywhere (credentials masked)
    base: httpx2.URL  # without user info
    authorization: str | None  # HTTP basic auth from the URL's user info
    host: str  # the Host header for it
    in_flight: int = 0
    failures: int = 0  # consecutive
    set_aside_until: float = 0.0
    addressed: dict = field(default_factory=dict, repr=False)  # routed path → this endpoint's URL for it

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parsed = httpx2.URL(url)
        login = url_login(url)
        authorization = "Basic " + base64.b64encode(login.encode()).decode() if login else None
        base = parsed.copy_with(username=None, password=None)
        return cls(url=url, name=redact_url(url), base=base, authorization=authorization, host=base.netloc.decode())

    def address(self, url: httpx2.URL) -> httpx2.URL:
        """`url` (under ROUTED_BASE) re-addressed to this endpoint, its own query parameters added. Requests go
        to a handful of paths, and parsing a URL is a good share of a request's CPU: each is worked out once."""
        found = self.addressed.get(url.raw_path)
        if found is None:
            suffix = url.path[len(_ROUTED_PATH) :]
            params = self.base.params.merge(url.params)
            found = self.addressed[url.raw_path] = self.base.copy_with(
                path=self.base.path.rstrip("/") + suffix, params=params
            )
        return found


_ROUTED_PATH = httpx2.URL(ROUTED_BASE).path.rstrip("/")


class EndpointPool(httpx2.AsyncBaseTransport):
    client_max_retries = None  # the openai client retries as its settings say (drp.endpoint.RETRY_POLICY)

    # Batch mode counts the traces in flight; online mode has no use for it.
    def trace_started(self) -> None:
        pass

    def trace_finished(self) -> None:
        pass

    def __init__(
        self,
        urls: list[str] | tuple[str, ...],
        *,
        failures_before_set_aside: int = FAILURES_BEFORE_SET_ASIDE,
        cooldown: float = COOLDOWN_SECONDS,
        down_after: int = FAILURES_BEFORE_DOWN,
        max_connections: int = 1024,
        clock=time.monotonic,
    ):
        if not urls:
            raise ValueError("an endpoint pool needs at least one URL")
        self.endpoints = [Endpoint.from_url(url) for url in urls]
        self.failures_before_set_aside = failures_before_set_aside
        self.cooldown = cooldown
        self.max_connections = max_connections
        self._clock = clock
        self.down_after = max(down_after, len(self.endpoints))
        self.unreachable = 0  # requests in a row that reached no endpoint (no usable reply since)
        self.down: str | None = None  # why every endpoint is taken for down; then nothing more is sent
        self._sender = None  # built on first use, inside the event loop that will use it

    def choose(self, exclude: list[Endpoint] = ()) -> Endpoint | None:
        """The ready endpoint with the fewest requests in flight; when all are set aside, the one due back first."""
        candidates = [endpoint for endpoint in self.endpoints if endpoint not in exclude]
        if not candidates:
            return None
        now = self._clock()
        ready = [endpoint for endpoint in candidates if endpoint.set_aside_until <= now]
        if ready:
            return min(ready, key=lambda endpoint: endpoint.in_flight)
        return min(candidates, key=lambda endpoint: endpoint.set_aside_until)

    def scrub(self, text: str) -> str:
        """An error message with every endpoint's credentials masked."""
        for endpoint in self.endpoints:
            text = scrub(text, endpoint.url)
        return text

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        scope = current_call()
        if self.down:  # the run is stopping: nothing more is sent
            raise EndpointsDown(self.down)
        routed_url = request.url
        chat = routed_url.path.endswith("/chat/completions")
        max_tokens = scope.max_tokens if scope is not None else None
        tried: list[Endpoint] = []
        while True:
            endpoint = self.choose(exclude=tried)
            self._address(request, routed_url, endpoint)
            endpoint.in_flight += 1
            try:
                response = await self._send(request)
                if response.status_code >= 400:
                    body = await read_capped(response, ERROR_BODY_BYTES, truncate=True)
                else:
                    body = await read_capped(response, body_limit(max_tokens))
                    parsed = chat_completion(body, max_tokens) if chat else None
            except httpx2.TransportError as exc:
                self._failed(endpoint, scope, self.scrub(f"{type(exc).__name__}: {exc}"))
                tried.append(endpoint)
                if isinstance(exc, UNREACHABLE):
                    self._unreachable(exc)
                if isinstance(exc, httpx2.ConnectError) and self.choose(exclude=tried) is not None:
                    continue  # it never reached that server: another endpoint takes it at once
                raise
            except BadReply as exc:  # an answer, but no usable one: that endpoint's failure; another may do better
                self._failed(endpoint, scope, str(exc))
                tried.append(endpoint)
                if self.choose(exclude=tried) is not None:
                    continue
                raise
            except asyncio.CancelledError:  # the request's deadline passed (drp.teacher.client): not re-sent
                self._failed(endpoint, scope, DEADLINE_ERROR)
                raise
            finally:
                endpoint.in_flight -= 1
            if response.status_code >= 400:
                self._failed(
                    endpoint, scope, f"HTTP {response.status_code}", counts=response.status_code in UNHEALTHY_STATUS
                )
            else:
                endpoint.failures = 0
                self.unreachable = 0
            if scope is not None:
                scope.endpoint = endpoint.name
            # The body is read (and decoded) already: handed on whole, with the parsed reply beside it.
            headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _BODY_HEADERS]
            read = httpx2.Response(
                response.status_code, headers=headers, content=body, request=request, extensions=response.extensions
            )
            if response.status_code < 400 and parsed is not None:
                read.extensions["drp_parsed"] = parsed
            return read

    def _unreachable(self, exc: Exception) -> None:
        """One more request that reached no endpoint at all; enough of them in a row, and no reply since, and
        every endpoint is taken for down: the run stops instead of failing every trace."""
        self.unreachable += 1
        if self.unreachable >= self.down_after and not self.down:
            names = ", ".join(endpoint.name for endpoint in self.endpoints)
            self.down = (
                f"every teacher endpoint is down ({self.unreachable} connection failures in a row on "
                f"{names}; last: {self.scrub(str(exc))[:200]})"
            )

    @staticmethod
    def _address(request: httpx2.Request, routed_url: httpx2.URL, endpoint: Endpoint) -> None:
        """Point the request (built by the openai client for this one try) at the endpoint."""
        request.url = endpoint.address(routed_url)
        request.headers["Host"] = endpoint.host
        request.headers["Accept-Encoding"] = ACCEPTED_ENCODINGS  # what bodies.read_capped decodes, and no more
        if endpoint.authorization:  # user info in the URL wins over the bearer key, as httpx itself does
            request.headers["Authorization"] = endpoint.authorization

    async def _send(self, request: httpx2.Request) -> httpx2.Response:
        if self._sender is None:
            from httpx_aiohttp.httpx2 import AiohttpTransport

            secure = any(endpoint.base.scheme == "https" for endpoint in self.endpoints)
            # No TLS context (and no CA bundle to load) when every endpoint is plain HTTP.
            self._sender = AiohttpTransport(verify=secure, limits=httpx2.Limits(max_connections=self.max_connections))
        try:
            return await self._sender.handle_async_request(request)
        except httpx2.TransportError as exc:
            raise _classified(exc) from exc.__cause__

    def _failed(self, endpoint: Endpoint, scope, error: str, counts: bool = True) -> None:
        if scope is not None:
            scope.endpoint = endpoint.name
            scope.endpoint_errors.append({"endpoint": endpoint.name, "error": error})
        if not counts:
            return
        endpoint.failures += 1
        if endpoint.failures >= self.failures_before_set_aside:
            endpoint.set_aside_until = self._clock() + self.cooldown

    async def aclose(self) -> None:
        if self._sender is not None:
            await self._sender.aclose()
            self._sender = None


def _classified(exc: httpx2.TransportError) -> httpx2.TransportError:
    """httpx-aiohttp reports every aiohttp connection fault as a ConnectTimeout; say which fault it was, so a
    refused connection reads "connection failed", not "timeout", and is sent elsewhere at once."""
    import aiohttp

    cause = exc.__cause__
    if cause is None or isinstance(cause, asyncio.TimeoutError):
        return exc
    if isinstance(cause, aiohttp.ClientConnectorError):
        return httpx2.ConnectError(str(cause))
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return httpx2.RemoteProtocolError(str(cause) or "the server closed the connection")
    if isinstance(exc, httpx2.ConnectTimeout) and isinstance(cause, aiohttp.ClientConnectionError):
        return httpx2.ReadError(str(cause) or type(cause).__name__)
    return exc
