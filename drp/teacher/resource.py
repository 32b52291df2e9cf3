"""The chat-completions resource that drp's ChatOpenAI calls in place of the openai SDK's own: the request goes
out through the openai client's generic `post`, exactly as langchain-openai built it.

langchain-openai hands the openai SDK plain JSON (its messages are dicts of strings), which the SDK's
`chat.completions.create` walks once more against its typed parameter annotations before sending; that walk
changes nothing here and costs CPU (with the typed reply the SDK builds, about 1.2 ms per call). Without this
resource, orchestrator CPU per trace grows by 14% at 1 s per call and 17% at 0.1 s (means of 4 alternated
rounds; `benchmarks/orchestration.py --compare drp,sdk-create --concurrency 64 --workers 2`, 2026-12-07). Posting
through `AsyncOpenAI.post` keeps everything else of the SDK: the base URL, auth headers, the retry policy
(drp.endpoint.RETRY_POLICY) and its errors. The reply is handed back as a dict, which langchain-openai reads
as it reads the SDK's own objects.
"""

from __future__ import annotations

_REQUEST_OPTIONS = ("extra_headers", "extra_query", "timeout")


class ChatCompletions:
    """Stands in for `AsyncOpenAI().chat.completions` in ChatOpenAI(async_client=...)."""

    def __init__(self, client):
        self._client = client

    @property
    def with_raw_response(self) -> ChatCompletions:
        return self

    async def create(self, **payload) -> RawReply:
        import httpx2
        import openai

        extra_body = payload.pop("extra_body", None) or {}
        options = {key: payload.pop(key) for key in _REQUEST_OPTIONS if key in payload}
        body = {key: value for key, value in payload.items() if not isinstance(value, (openai.NotGiven, openai.Omit))}
        body.update(extra_body)
        request_options = {"headers": options.get("extra_headers") or {}, "params": options.get("extra_query") or {}}
        if not isinstance(options.get("timeout"), (type(None), openai.NotGiven, openai.Omit)):
            request_options["timeout"] = options["timeout"]
        response = await self._client.post(
            "/chat/completions", cast_to=httpx2.Response, body=body, options=request_options
        )
        return RawReply(response)


class RawReply:
    """What langchain-openai reads of a raw response: `parse()`, `headers`, `http_response`."""

    def __init__(self, response):
        self.http_response = response
        self.headers = response.headers

    def parse(self) -> dict:
        return self.http_response.json()
