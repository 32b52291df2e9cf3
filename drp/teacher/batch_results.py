"""Reading a batch job's output and error files (drp.teacher.batch), trusting nothing in them.

Each line should answer one request of the job. A line is checked before it counts: JSON, an object, a `custom_id`
of this job seen for the first time, a `response` with an HTTP status and (for a 2xx) a chat completion body, or an
`error`, and no bigger than its request can need. A line that names one of the job's requests but breaks a rule is
that request's failure (`Results.bad`); a line that names none of them (not JSON without a recognisable id, no
`custom_id`, an id not in the job) or repeats an id already answered is ignored, and said so in `Results.warnings`;
requests left without a line go to the next round like any other unanswered request.

How much a file may hold is capped too: what every request of the job can need, decompressed (`file_cap`), so
junk from an endpoint is refused while it downloads instead of filling memory and the run's database.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# What one result line can need: its reply's text (max_tokens at a generous 32 bytes per token, JSON escapes
# included) plus the completion's envelope (ids, usage, a tool call's wrapping).
LINE_ENVELOPE_BYTES = 16 * 1024
BYTES_PER_TOKEN = 32
UNKNOWN_MAX_TOKENS = 32_768  # a request whose body is not known here (a job found again on resume)
FILE_SLACK_BYTES = 1024 * 1024  # on top of the lines: blank lines, an endpoint's extra fields
RAW_KEPT_CHARS = 1000  # of an unusable line, in the error that the transcript records

_CUSTOM_ID = re.compile(r'"custom_id"\s*:\s*"(drp-[0-9a-f]{40})"')


def line_budget(body: dict | None) -> int:
    """Bytes a result line for this request body can need."""
    tokens = None
    if isinstance(body, dict):
        tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens <= 0:
        tokens = UNKNOWN_MAX_TOKENS
    return LINE_ENVELOPE_BYTES + BYTES_PER_TOKEN * tokens


def file_cap(budgets: dict[str, int]) -> int:
    """Bytes (decompressed) one output or error file of a job with these requests may hold."""
    return FILE_SLACK_BYTES + sum(budgets.values())


@dataclass
class Results:
    answered: dict[str, tuple[int, dict]] = field(default_factory=dict)  # custom_id → (HTTP status, body)
    bad: dict[str, str] = field(default_factory=dict)  # custom_id → why its line cannot be used
    warnings: list[str] = field(default_factory=list)  # lines ignored, each said once

    def has(self, custom_id: str) -> bool:
        return custom_id in self.answered or custom_id in self.bad


def read_results(text: str, budgets: dict[str, int], results: Results, file_name: str) -> None:
    """Add one file's lines to `results` (the first line for an id wins, over both files)."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{file_name} line {number}"
        custom_id, outcome = _read_line(line, budgets)
        if custom_id is None:
            results.warnings.append(f"{where} ignored: {outcome}")
        elif custom_id not in budgets:
            results.warnings.append(f"{where} ignored: custom_id {_head(custom_id, 60)} is not a request of this job")
        elif results.has(custom_id):
            results.warnings.append(f"{where} ignored: a second line for {custom_id} (the first one counts)")
        elif isinstance(outcome, str):
            results.bad[custom_id] = f"{where} cannot be used: {outcome}"
        else:
            results.answered[custom_id] = outcome


def _read_line(line: str, budgets: dict[str, int]) -> tuple[str | None, tuple[int, dict] | str]:
    """(custom_id or None, the (status, body) it answers or why it cannot be used)."""
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        record = None
        problem = "not JSON"
    else:
        problem = None if isinstance(record, dict) else f"JSON {type(record).__name__}, not an object"
    if problem is not None:
        found = set(_CUSTOM_ID.findall(line)) & set(budgets)
        return (found.pop(), f"{problem}: {_head(line)}") if len(found) == 1 else (None, problem)
    custom_id = record.get("custom_id")
    if not isinstance(custom_id, str):
        return (
            None,
            "no custom_id" if custom_id is None else f"custom_id {_head(json.dumps(custom_id), 60)} is not a string",
        )
    budget = budgets.get(custom_id)
    if budget is not None and len(line.encode("utf-8", "replace")) > budget:
        return custom_id, (
            f"{len(line.encode('utf-8', 'replace'))} bytes, more than its request can need ({budget}): {_head(line)}"
        )
    return custom_id, _outcome(record)


def _outcome(record: dict) -> tuple[int, dict] | str:
    response, error = record.get("response"), record.get("error")
    if response is None:
        if error is None:
            return "neither a response nor an error"
        message = error.get("message") if isinstance(error, dict) else error
        code = error.get("code") if isinstance(error, dict) else None
        # The endpoint did not run it (expired, failed job): worth another round, as a 500.
        return 500, {
            "error": {
                "message": _head(str(message or "no response"), 500),
                "code": code if isinstance(code, str) else None,
                "type": "batch_error",
            }
        }
    if not isinstance(response, dict):
        return f"a response that is {type(response).__name__}, not an object"
    status = response.get("status_code")
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        return f"status_code {_head(json.dumps(status), 60)} is not an HTTP status"
    body = response.get("body")
    if 200 <= status < 300:
        problem = _not_a_chat_completion(body)
        return f"HTTP {status} with {problem}" if problem else (status, body)
    if not (isinstance(body, dict) and isinstance(body.get("error"), dict)):
        body = {"error": {"message": _head(json.dumps(body), 500), "type": "batch_error"}}
    return status, body


def _not_a_chat_completion(body) -> str | None:
    """What makes this body no chat completion (None when it is one the client can read)."""
    if not isinstance(body, dict):
        return "no body" if body is None else f"a body that is {type(body).__name__}, not an object"
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        return "a body without choices (not a chat completion)"
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict) or message.get("role") != "assistant":
            return "a choice without an assistant message (not a chat completion)"
        if not isinstance(message.get("content"), (str, type(None))):
            return "a message whose content is not text"
        if not isinstance(message.get("tool_calls"), (list, type(None))):
            return "a message whose tool_calls are not a list"
        if not isinstance(message.get("function_call"), (dict, type(None))):
            return "a message whose function_call is not an object"
    body["usage"] = _plain_usage(body.get("usage"))
    return None


def _plain_usage(usage) -> dict | None:
    """The token counts a usage reports, when they are counts (the reply stands without them: tokens unknown)."""
    if not isinstance(usage, dict):
        return None
    counts = {
        key: usage[key]
        for key in ("prompt_tokens", "completion_tokens", "total_tokens")
        if isinstance(usage.get(key), int) and not isinstance(usage[key], bool) and 0 <= usage[key] < 10**9
    }
    return counts if "prompt_tokens" in counts and "completion_tokens" in counts else None


def _head(text: str, limit: int = RAW_KEPT_CHARS) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"
