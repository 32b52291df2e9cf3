"""Reading a teacher's reply: the JSON object inside free text, validated against the agent's schema, and
the `response_format` each structured-output method sends. A reply that does not fit becomes an error
string the agent turns into a retry with feedback, never an exception."""

from __future__ import annotations

import json
import re
from functools import lru_cache

from pydantic import BaseModel, ValidationError

from drp import reply_json
from drp.endpoint import short


@lru_cache(maxsize=1024)
def response_format(method: str, schema: type[BaseModel]) -> dict:
    """json_mode sends the schema too (llama.cpp and vLLM enforce it). The dict is shared between calls (schemas
    are built once per shape, drp/schemas.py, and writing their JSON schema costs more than building the
    request): nothing may change it."""
    if method == "json_mode":
        return {"type": "json_object", "schema": schema.model_json_schema()}
    return {"type": "json_schema", "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()}}


def repeated_tail(text: str) -> str | None:
    """The phrase a runaway reply keeps repeating at its end (three times or more), or None."""
    found = _LOOP.search(text[-3000:])
    return short(found.group(1).strip(), 60) if found else None


_LOOP = re.compile(r"(.{6,200}?)(?:\s*\1){2,}\W*$", re.S)


def parse_json_reply(text: str, schema: type[BaseModel]) -> tuple[BaseModel | None, str | None]:
    """Find the JSON object in a free-text reply (code fences and chatter allowed) and validate it, with
    the LaTeX inside its strings kept (drp/reply_json.py)."""
    candidate = _json_object(text)
    if candidate is None:
        return None, "the reply contains no JSON object"
    try:
        return schema.model_validate(reply_json.decode(candidate)), None
    except reply_json.ReplyJSONError as exc:
        return None, str(exc)
    except ValidationError as exc:
        return None, describe(exc, schema)


def parse_tool_call(message, schema: type[BaseModel]) -> tuple[BaseModel | None, str | None]:
    """The first tool call's arguments, validated, with the LaTeX inside kept (drp/reply_json.py). The client
    decoded the arguments already, leniently; arguments it could not decode (a LaTeX `sqrt` after one
    backslash) are decoded here."""
    try:
        if getattr(message, "tool_calls", None):
            return schema.model_validate(reply_json.clean(message.tool_calls[0]["args"])), None
        if getattr(message, "invalid_tool_calls", None):
            return schema.model_validate(reply_json.decode(message.invalid_tool_calls[0]["args"] or "")), None
    except reply_json.ReplyJSONError as exc:
        return None, str(exc)
    except ValidationError as exc:
        return None, describe(exc, schema)
    return None, "the reply held no tool call"


def _json_object(text: str) -> str | None:
    fenced = re.search(r"```(?:json)?\s*(\{.*?\})\s*```", text, re.DOTALL)
    if fenced:
        return fenced.group(1)
    start = text.find("{")
    if start < 0:
        return None
    decoder = json.JSONDecoder(strict=False)
    try:
        _, end = decoder.raw_decode(text[start:])
        return text[start : start + end]
    except json.JSONDecodeError:
        return text[start : text.rfind("}") + 1] or None


def content(message) -> str:
    """The text of a chat message (content parts joined as JSON)."""
    text = getattr(message, "content", "")
    return text if isinstance(text, str) else json.dumps(text)


def raw_text(message) -> str:
    """What the teacher said, tool calls included, as it is recorded."""
    text = content(message)
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        text = (text + "\n" if text else "") + json.dumps(
            [{"name": c["name"], "args": c["args"]} for c in tool_calls], ensure_ascii=False
        )
    return text


def describe(exc, schema: type[BaseModel] | None = None) -> str | None:
    """A parse failure as feedback the teacher can act on (the schema says how to fix its own fields)."""
    if exc is None:
        return None
    if isinstance(exc, ValidationError):
        explain = getattr(schema, "explain", None)
        if explain is not None and exc.title == schema.__name__:
            return explain(exc)
        problems = [f"{'.'.join(map(str, e['loc'])) or 'reply'}: {e['msg']}" for e in exc.errors()[:5]]
        return "the reply does not match the schema: " + "; ".join(problems)
    return short(f"{type(exc).__name__}: {exc}")
