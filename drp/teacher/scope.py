"""What the layers under `Teacher.ask` need to know about the request they carry, and what they found out.

The agents call `Teacher.ask`; the request then passes through langchain-openai and the openai client before
it reaches drp's transport (the endpoint pool, or the batch queue). Those layers in between know nothing of
traces, so the facts travel beside the request in a context variable: which trace, node and attempt it belongs
to (the batch queue keys requests by them), and which endpoint answered and which failed on the way (each
call record keeps them).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

# Set by the runner for each trace it processes (the trace's task and every task it starts inherit it).
CURRENT_TRACE: ContextVar[str | None] = ContextVar("drp_current_trace", default=None)


@dataclass
class CallScope:
    trace_id: str | None = None
    node: str | None = None
    attempt: int | None = None
    max_tokens: int | None = None  # the reply's budget: what its body may weigh follows from it
    endpoint: str | None = None  # the endpoint that answered (credentials masked)
    endpoint_errors: list[dict] = field(default_factory=list)  # tries that failed first: {"endpoint", "error"}


CURRENT_CALL: ContextVar[CallScope | None] = ContextVar("drp_current_call", default=None)


def current_call() -> CallScope | None:
    return CURRENT_CALL.get()
