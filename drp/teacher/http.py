"""The HTTP client the teacher's openai client sends through: each request goes straight to drp's transport
(the endpoint pool online, the batch queue in batch mode), which addresses and carries it.

The openai client hands over requests with absolute URLs and every header it wants (its auth included), so what
httpx's client adds on the way to a transport (base-URL merging, cookie jars, auth flows, redirects, event hooks)
has nothing to do here, and cost about a tenth of a request's CPU: this client builds the request as given and
passes it on. Anything unusual (files, form data, cookies) takes httpx's own path.
"""

from __future__ import annotations

import time
from datetime import timedelta

import httpx2
from httpx2 import USE_CLIENT_DEFAULT


class TransportClient(httpx2.AsyncClient):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._urls: dict[str, httpx2.URL] = {}  # the few URLs requests go to, each parsed once (URLs are immutable)

    def build_request(
        self,
        method,
        url,
        *,
        content=None,
        data=None,
        files=None,
        json=None,
        params=None,
        headers=None,
        cookies=None,
        timeout=USE_CLIENT_DEFAULT,
        extensions=None,
    ) -> httpx2.Request:
        if isinstance(url, str):
            parsed = self._urls.get(url)
            if parsed is None:
                if len(self._urls) > 64:
                    self._urls.clear()
                parsed = self._urls[url] = httpx2.URL(url)
            url = parsed
        if data is not None or files is not None or cookies or not url.is_absolute_url:
            return super().build_request(
                method,
                url,
                content=content,
                data=data,
                files=files,
                json=json,
                params=params,
                headers=headers,
                cookies=cookies,
                timeout=timeout,
                extensions=extensions,
            )
        extensions = dict(extensions or {})
        if "timeout" not in extensions:
            chosen = self.timeout if timeout is USE_CLIENT_DEFAULT else httpx2.Timeout(timeout)
            extensions["timeout"] = chosen.as_dict()
        return httpx2.Request(
            method, url, content=content, json=json, params=params, headers=headers, extensions=extensions
        )

    async def send(self, request: httpx2.Request, *, stream: bool = False, **kwargs) -> httpx2.Response:
        started = time.perf_counter()
        response = await self._transport.handle_async_request(request)
        response.request = request
        if not stream:  # the transports hand over replies read whole already (the pool reads them capped)
            try:
                await response.aread()
            finally:
                await response.aclose()
            response.elapsed = timedelta(seconds=time.perf_counter() - started)
        return response
