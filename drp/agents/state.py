"""What flows through the graph for one trace. Run settings travel separately, as context."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict


class Step(TypedDict, total=False):
    unit_start: int | None  # 1-based, inclusive; None when the segmentation re-typed the text (paper policy)
    unit_end: int | None
    text: str  # the original text of the step
    echo: str | None  # what an echo segmenter re-typed for it (paper policy)
    joined_by: str  # what joins it to the text before it (drp.text.PARAGRAPH, a line break or a space)
    skill: str
    action: str  # KEEP | DELETE | COMPRESS | MERGE
    rewritten: str | None
    merge_group: int | None


class TraceState(TypedDict, total=False):
    trace: dict  # id, question, response, gold_answer
    thinking: str
    answer_section: str
    original_answer: str | None
    units: list[str]
    unit_joins: list[str]  # per unit, what joins it to the text before it: drp.text.PARAGRAPH, a line break or a space
    original_correct: bool | None  # the original answer against gold (None: no gold); a gate when verify.check_gold
    reply_gaps: dict  # free-text pruner: steps its reply gave no action, actions that are none of the paper's four
    echo_coverage: float | None  # echo segmenters: share of the original the echo reproduces
    thinking_reaches_answer: bool  # False when the answer is only derived after </think>
    response_tokens_before: int
    steps: list[Step]
    prune_windows: list[dict]  # the pruner's windows: first, last (1-based), reply_tokens, pruned "thinking", joined_by
    pruned_thinking: str
    pruned_answer_section: str
    pruned_answer: str | None
    attempt: int  # pruning attempt, 1-based
    feedback: str | None  # the verifier's message to the pruner for the next attempt
    verdict: dict
    status: str | None  # accepted | rejected | failed once terminal
    reason: str | None
    teacher_unreachable: bool  # failed because no teacher endpoint could be reached: left pending, not failed
    calls: Annotated[list[dict], operator.add]  # every agent call, in order
