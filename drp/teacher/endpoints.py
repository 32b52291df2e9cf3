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
(its path prefix, query parameters and user info included). Bytes move through aiohttp, called directly: it costs
less CPU per request than httpx's own connection pool at drp's concurrency, and its faults are named here in
httpx's terms (what the openai client above understands).
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field

import httpx2
import yarl

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
    addressed: dict = field(default_factory=dict, repr=False)  # routed path → this endpoint's URL for it (httpx, yarl)

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        parsed = httpx2.URL(url)
        login = url_login(url)
        authorization = "Basic " + base64.b64encode(login.encode()).decode() if login else None
        base = parsed.copy_with(username=None, password=None)
        return cls(url=url, name=redact_url(url), base=base, authorization=authorization, host=base.netloc.decode())

    def address(self, url: httpx2.URL) -> httpx2.URL:
        """`url` (under ROUTED_BASE) re-addressed to this endpoint, its own query parameters added."""
        return self._addressed(url)[0]

    def _addressed(self, url: httpx2.URL) -> tuple[httpx2.URL, yarl.URL]:
        """The address in httpx's terms (for the request) and aiohttp's (to send it). Requests go to a handful of
        paths, and parsing a URL is a good share of a request's CPU: each is worked out once."""
        found = self.addressed.get(url.raw_path)
        if found is None:
            suffix = url.path[len(_ROUTED_PATH) :]
            params = self.base.params.merge(url.params)
            routed = self.base.copy_with(path=self.base.path.rstrip("/") + suffix, params=params)
            found = self.addressed[url.raw_path] = (routed, yarl.URL(str(routed), encoded=True))
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
        self._session = None  # aiohttp's, built on first use inside the event loop that will use it

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
            target = self._address(request, routed_url, endpoint)
            endpoint.in_flight += 1
            try:
                status, headers, body = await self._exchange(request, target, body_limit(max_tokens))
                if chat and status < 400:
                    body = chat_completion(body, max_tokens)
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
            if status >= 400:
                self._failed(endpoint, scope, f"HTTP {status}", counts=status in UNHEALTHY_STATUS)
            else:
                endpoint.failures = 0
                self.unreachable = 0
            if scope is not None:
                scope.endpoint = endpoint.name
            # The body is read (and decoded) already: handed on whole. Checked above, it is parsed once more by
            # the openai client (a small price beside a layer that would hand the parsed dict over).
            headers = [(k, v) for k, v in headers if k.lower() not in _BODY_HEADERS]
            return httpx2.Response(status, headers=headers, content=body, request=request)

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
    def _address(request: httpx2.Request, routed_url: httpx2.URL, endpoint: Endpoint) -> yarl.URL:
        """Point the request (built by the openai client for this one try) at the endpoint; its URL for aiohttp."""
        request.url, target = endpoint._addressed(routed_url)
        request.headers["Host"] = endpoint.host
        request.headers["Accept-Encoding"] = ACCEPTED_ENCODINGS  # what bodies.read_capped decodes, and no more
        if endpoint.authorization:  # user info in the URL wins over the bearer key, as httpx itself does
            request.headers["Authorization"] = endpoint.authorization
        return target

    async def _exchange(self, request: httpx2.Request, target: yarl.URL, limit: int) -> tuple[int, list, bytes]:
        """(status, headers, body) of one try: the body read capped (an error's cut at ERROR_BODY_BYTES)."""
        import aiohttp

        if self._session is None:
            secure = any(endpoint.base.scheme == "https" for endpoint in self.endpoints)
            # No TLS context (and no CA bundle to load) when every endpoint is plain HTTP. No aiohttp timeout:
            # the request's deadline (drp.teacher.client) governs. Bodies are decoded by read_capped, bounded.
            connector = aiohttp.TCPConnector(limit=self.max_connections, ssl=None if secure else False)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(), auto_decompress=False, trust_env=False
            )
        try:
            async with self._session.request(
                request.method, target, headers=request.headers, data=request.content or None, allow_redirects=False
            ) as response:
                encoding = response.headers.get("Content-Encoding", "")
                chunks = response.content.iter_any()
                if response.status >= 400:
                    body = await read_capped(chunks, encoding, ERROR_BODY_BYTES, truncate=True)
                else:
                    body = await read_capped(chunks, encoding, limit)
                return response.status, list(response.headers.items()), body
        except aiohttp.ClientError as exc:
            named = _in_httpx_terms(exc)
            if named is exc:
                raise
            raise named from exc

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
        if self._session is not None:
            await self._session.close()
            self._session = None


def _in_httpx_terms(exc: Exception) -> Exception:
    """An aiohttp fault as the httpx error the openai client and the pool act on: a refused connection is a
    ConnectError (sent elsewhere at once, "connection failed"), a dropped one a RemoteProtocolError."""
    import aiohttp

    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx2.ConnectError(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx2.RemoteProtocolError(str(exc) or "the server closed the connection")
    if isinstance(exc, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
        return httpx2.ReadError(message)
    if isinstance(exc, (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)):
        return httpx2.UnsupportedProtocol(message)
    return exc  # anything else (an unreadable HTTP answer) reaches the openai client as it is
