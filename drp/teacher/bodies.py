"""Reading a teacher endpoint's reply body online: capped, decompressed here, and held to the shape of a chat
completion before anything else reads it.

An endpoint is not trusted to be sane. A body is read chunk by chunk and decompressed with a bounded output per
chunk (gzip and deflate; any other encoding is refused), so neither an endless body nor a compression bomb
ever sits in memory beyond the cap: a multiple of what the request can need (its `max_tokens`). A body that
goes past the cap, is not JSON, or is JSON of another shape (no `choices`, no message, content that is not
text) is a BadReply: the endpoint pool counts it as that endpoint's failure and sends the request elsewhere.
Usage a server reports out of range (negative, not an integer, absurd) is dropped, so the call's tokens are
missing, never stored as reported.
"""

from __future__ import annotations

import json
import zlib

# The cap: room for the JSON around the reply, plus per output token far more than any token's text can take
# once JSON-escaped (and once more inside tool-call arguments).
BODY_BASE_BYTES = 256 * 1024
BODY_BYTES_PER_TOKEN = 256
DEFAULT_MAX_TOKENS = 8192  # a request whose budget is not known
ERROR_BODY_BYTES = 64 * 1024  # an HTTP error's body: kept this far for its message, the rest never read
RAW_KEPT_CHARS = 2000  # what a transcript keeps of a body that is not a usable reply
MAX_REPORTED_TOKENS = 10**9  # usage beyond this is no count at all


class BadReply(Exception):
    """An answer that is not a usable chat completion; `raw` is the start of the body, for the transcript."""

    def __init__(self, message: str, raw: str = ""):
        super().__init__(message)
        self.raw = raw


def body_limit(max_tokens: int | None) -> int:
    return BODY_BASE_BYTES + BODY_BYTES_PER_TOKEN * (max_tokens or DEFAULT_MAX_TOKENS)


async def read_capped(chunks, encoding: str, limit: int, *, truncate: bool = False) -> bytes:
    """A body from its raw `chunks` (an async iterator of bytes) sent in Content-Encoding `encoding`, decompressed,
    never more than `limit` bytes held: past it, BadReply (or, with `truncate`, the first `limit` bytes). The
    caller closes the connection (its unread rest is never read)."""
    held: list[bytes] = []
    size = 0
    decoder = _decoder(encoding)
    async for raw in chunks:
        chunk = decoder(raw, limit - size + 1)
        held.append(chunk)
        size += len(chunk)
        if size > limit:
            if truncate:
                return b"".join(held)[:limit]
            head = b"".join(held)[:RAW_KEPT_CHARS].decode("utf-8", "replace")
            raise BadReply(
                f"reply too large: over {limit:,} bytes, more than a reply within its max_tokens can take (cut off)",
                head,
            )
    return b"".join(held)


def _decoder(encoding: str):
    """A function (raw bytes, most output bytes) → decoded bytes for this Content-Encoding."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return lambda raw, most: raw
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BadReply(f"reply in an unsupported content encoding {encoding[:40]!r}")
    state: dict = {}

    def decode(raw: bytes, most: int) -> bytes:
        if "z" not in state:
            # gzip and zlib headers are told apart by zlib itself (wbits 32+); deflate without its zlib header
            # (which some servers send) is raw.
            zlib_header = len(raw) >= 2 and raw[0] & 0x0F == 8 and (raw[0] << 8 | raw[1]) % 31 == 0
            gzip_header = raw[:2] == b"\x1f\x8b"
            state["z"] = zlib.decompressobj(32 + zlib.MAX_WBITS if zlib_header or gzip_header else -zlib.MAX_WBITS)
        try:
            # At most `most` bytes come out of this chunk: a bomb stops here, the rest of it never inflated.
            return state["z"].decompress(raw, most)
        except zlib.error as exc:
            raise BadReply(f"reply body does not decompress ({encoding}): {exc}") from None

    return decode


def chat_completion(body: bytes, max_tokens: int | None) -> bytes:
    """The body of a chat completion as it is handed on (usage out of range taken out of it), or BadReply saying
    what is wrong with it."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested past what the parser follows
        raise BadReply("reply is not JSON" + _content_hint(body), _head(body)) from None
    problem = shape_problem(data)
    if problem:
        raise BadReply(f"reply is not a chat completion: {problem}", _head(body))
    if "usage" in data and not usable_usage(data["usage"], max_tokens):
        del data["usage"]  # the call's tokens are then counted or missing, never these
        return json.dumps(data).encode()
    return body


def shape_problem(data) -> str | None:
    """What keeps `data` from being a chat completion langchain-openai can read; None when nothing does."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        return "no choices" if not choices else "`choices` is not a list"
    choice = choices[0]
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        return "choices[0] has no message"
    message = choice["message"]
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        return f"the message content is a {type(content).__name__}, not text"
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if not isinstance(tool_calls, list) or not all(_is_tool_call(call) for call in tool_calls):
            return "malformed tool_calls"
    elif content is None:
        return "the message has neither content nor tool calls"
    if not isinstance(choice.get("finish_reason"), (str, type(None))):
        return "finish_reason is not text"
    return None


def _is_tool_call(call) -> bool:
    function = call.get("function") if isinstance(call, dict) else None
    return (
        isinstance(function, dict)
        and isinstance(function.get("name"), str)
        and isinstance(function.get("arguments"), (str, type(None)))
    )


def usable_usage(usage, max_tokens: int | None) -> bool:
    """Whether a reply's usage can be believed: token counts that are whole numbers in range, and no more output
    than the request allowed (with room for servers that count a few tokens more)."""
    if not isinstance(usage, dict):
        return False
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not (valid_count(prompt) and valid_count(completion)):
        return False
    if max_tokens and completion > 2 * max_tokens + 64:
        return False
    for key, value in usage.items():  # totals and details langchain reads too must be counts (or absent)
        if key.endswith("_tokens") and not (value is None or valid_count(value)):
            return False
        if key.endswith("_details") and not (
            value is None or (isinstance(value, dict) and all(v is None or valid_count(v) for v in value.values()))
        ):
            return False
    return True


def plausible_usage(input_tokens, output_tokens, messages: list[dict], max_tokens: int | None) -> bool:
    """Whether a call's reported tokens fit the request: whole counts in range, no more input than its prompt's
    characters can make (with room for chat templates) and no more output than it allowed (with some slack)."""
    if not (valid_count(input_tokens) and valid_count(output_tokens)):
        return False
    prompt_chars = sum(len(str(message.get("content") or "")) for message in messages)
    if input_tokens > 3 * prompt_chars + 64 * len(messages) + 4096:
        return False
    return not max_tokens or output_tokens <= 2 * max_tokens + 64


def valid_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_REPORTED_TOKENS


def _head(body: bytes) -> str:
    return body[:RAW_KEPT_CHARS].decode("utf-8", "replace")


def _content_hint(body: bytes) -> str:
    start = body[:200].lstrip().lower()
    if start.startswith((b"<!doctype", b"<html")):
        return " (an HTML page)"
    return " (empty)" if not start else ""
