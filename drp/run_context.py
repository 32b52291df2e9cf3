"""Run-wide settings handed to every graph node (LangGraph runtime context), never stored in the state: built by the
runner (drp.run_traces), read by the agents."""

from __future__ import annotations

from dataclasses import dataclass

from drp.policy import Policy
from drp.reuse import ReplySource
from drp.teacher import Teacher
from drp.tokens import TokenCounter


@dataclass(frozen=True)
class RunContext:
    policy: Policy
    teacher: Teacher | None
    counter: TokenCounter
    max_record_chars: int | None = None  # a longer record ends as too_long before it is read (None: no cap)
    reuse: ReplySource | None = None  # the replies of the --reuse runs (drp/reuse.py)
