"""Response tokens split into thinking and answer, and how responses ended.

A response's thinking is everything up to and including its first `</think>` (drp.layout.thinking_prefix), its
answer the rest; both are counted with the student's tokenizer and add up to the response's tokens. A response
whose thinking never closes (cut at the cap, or a model that does not think) counts wholly as thinking and is
counted in `no_think_close`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from drp.evals.stats import distribution
from drp.layout import thinking_prefix


@dataclass(frozen=True)
class TokenSplit:
    tokens: int
    thinking: int
    answer: int
    think_closed: bool


def split_tokens(response: str | None, count: Callable[[str], int]) -> TokenSplit:
    total = count(response or "")
    head = thinking_prefix(response or "")
    if head is None:
        return TokenSplit(total, total, 0, False)
    thinking = min(count(head), total)  # a tokenizer may merge across the cut; the parts still add up
    return TokenSplit(total, thinking, total - thinking, True)


def _rate(count: int, n: int) -> dict:
    return {"count": count, "rate": count / n if n else None}


def response_endings(records: list[dict]) -> dict:
    """How the successful samples ended: stopped by the model, cut at the cap, thinking never closed, no answer."""
    n = len(records)
    return {
        "n": n,
        "stopped": _rate(sum(r.get("finish_reason") == "stop" for r in records), n),
        "truncated": _rate(sum(r.get("finish_reason") == "length" for r in records), n),
        "no_think_close": _rate(sum(r.get("think_closed") is False for r in records), n),
        "no_answer": _rate(sum(r.get("extracted_answer") is None for r in records), n),
    }


def token_split_metrics(records: list[dict]) -> dict:
    """Thinking, answer and total tokens (mean, median, p90) over the successful samples, overall and on correct
    and incorrect answers apart. Samples recorded before the split was (no `thinking_tokens`) are left out."""
    split = [r for r in records if r.get("thinking_tokens") is not None]

    def part(rows: list[dict]) -> dict:
        return {
            "n": len(rows),
            **{
                name: distribution([r[field] for r in rows])
                for name, field in (("tokens", "tokens"), ("thinking", "thinking_tokens"), ("answer", "answer_tokens"))
            },
        }

    return {
        **part(split),
        "correct": part([r for r in split if r.get("correct")]),
        "incorrect": part([r for r in split if not r.get("correct")]),
    }
