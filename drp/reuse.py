"""Teacher replies reused across runs (`drp run … --reuse RUN`).

Every teacher request a run may reuse has a content key: a hash of what decides the reply — the rendered
messages, the model, the sampling parameters (temperature, max_tokens), the response schema and the
structured-output method. A request whose key was answered in one of the `--reuse` runs takes that stored reply
instead of a network call; anything that differs is asked. Only first tries at the agent's own temperature are
keyed: retries (raised temperature, a note about the last reply) are asked again, never reused, and so is a
request whose stored reply failed (transport fault, parse error, the agent's own validation).

A reused reply is read exactly as a fresh one is (the stored raw text parsed again against the same schema), so
the same traces through the same policy reusing a finished run give the same results.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from drp.errors import UserError


class ReuseError(UserError):
    """A `--reuse` run that cannot be read for replies."""


@lru_cache(maxsize=1024)
def _schema_text(schema) -> str:
    """The schema's JSON schema, written once per schema class (schemas are built once per shape)."""
    return json.dumps({"name": schema.__name__, "schema": schema.model_json_schema()}, sort_keys=True)


def request_key(messages: list[dict], model: str, temperature: float, max_tokens: int, method: str, schema) -> str:
    """The content key of one teacher request (sha256 hex)."""
    head = json.dumps(
        {"model": model, "temperature": float(temperature), "max_tokens": int(max_tokens), "method": method},
        sort_keys=True,
    )
    body = json.dumps(messages, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256()
    for part in (head, _schema_text(schema), body):
        digest.update(part.encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()


@dataclass
class ReplySource:
    """The keyed replies of the `--reuse` runs: key → (run index, call id), first run first. Rows are read on a
    hit, through a read-only connection per process (worker processes fork with the index and open their own)."""

    folders: list[Path]
    names: list[str]
    index: dict[str, tuple[int, int]] = field(default_factory=dict)
    _stores: dict = field(default_factory=dict, repr=False)

    def lookup(self, key: str) -> dict | None:
        found = self.index.get(key)
        if found is None:
            return None
        source, call_id = found
        row = self._store(source).reply(call_id)
        return None if row is None else {**row, "run": self.names[source]}

    def _store(self, source: int):
        from drp.store import open_run

        pid = os.getpid()
        if (pid, source) not in self._stores:
            self._stores[(pid, source)] = open_run(self.folders[source])
        return self._stores[(pid, source)]

    def close(self) -> None:
        pid = os.getpid()
        for (owner, source), store in list(self._stores.items()):
            if owner == pid:
                store.close()
                del self._stores[(owner, source)]

    @property
    def size(self) -> int:
        return len(self.index)


def open_sources(folders: list[str | Path]) -> ReplySource | None:
    """The replies of these runs (folders), or None when none are given. A folder that holds no complete run, or a
    run made before replies were keyed, is refused in one line."""
    from drp.store import RunNotFound, open_run

    if not folders:
        return None
    paths = [Path(folder) for folder in folders]
    source = ReplySource(paths, [path.name for path in paths])
    for number, path in enumerate(paths):
        try:
            store = open_run(path)
        except RunNotFound:
            raise ReuseError(f"--reuse {path.name}: no run at {path}") from None
        try:
            if "reuse_key" not in store.columns("calls"):
                raise ReuseError(
                    f"--reuse {path.name}: that run was made before teacher replies were keyed "
                    "(an older drp): none of its replies can be reused"
                )
            for key, call_id in store.reusable_replies():
                source.index.setdefault(key, (number, call_id))
        finally:
            store.close()
    return source


def stored_reply(row: dict, method: str, schema):
    """A stored reply as the teacher client would have returned it: its raw text parsed again against the
    schema (a tool call's arguments from the recorded call; the recorded parse where they cannot be read)."""
    from drp import reply_json
    from drp.store import json_or_text
    from drp.teacher import Reply
    from drp.teacher.replies import parse_json_reply

    raw = row["raw_output"] or ""
    if method == "function_calling":
        parsed, error = _tool_call_args(raw, schema, reply_json)
        if parsed is None:
            try:
                parsed, error = schema.model_validate(json_or_text(row["parsed"])), None
            except ValueError as exc:
                error = f"the reused reply cannot be read again: {exc}"
    else:
        parsed, error = parse_json_reply(raw, schema)
    return Reply(
        parsed=parsed,
        raw=raw,
        error=error,
        model=row["model"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        latency_ms=0.0,
        usage=row["usage"] or "missing",
    )


def _tool_call_args(raw: str, schema, reply_json):
    """drp.teacher.replies.raw_text writes a tool call as a JSON list on the reply's last line."""
    try:
        calls = json.loads(raw.rsplit("\n", 1)[-1])
        return schema.model_validate(reply_json.clean(calls[0]["args"])), None
    except Exception:  # noqa: BLE001 - anything unreadable falls back to the recorded parse
        return None, None
