"""lm-eval's two answer filters for GSM8K (`gsm8k_cot_zeroshot`), as the paper scored: strict reads
"The answer is N.", flexible the last number; both compare exactly after lm-eval's ignore rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Strict: the number after "The answer is", followed by one more character (lm-eval's pattern leaves that last
# dot unescaped, so "The answer is 18." and "The answer is 18 " both match). The first match counts.
_STRICT = re.compile(r"The answer is (-?[0-9.,]+).")
# Flexible: the last number-like run in the text ("$1,000." and "42" alike).
_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
# Removed from both sides before the exact comparison: thousands separators, dollar signs, a final full stop.
_IGNORED = (re.compile(r","), re.compile(r"\$"), re.compile(r"\.$"))


def strict_answer(text: str | None) -> str | None:
    found = _STRICT.search(text or "")
    return found.group(1) if found else None


def flexible_answer(text: str | None) -> str | None:
    matches = _FLEXIBLE.findall(text or "")
    if not matches:
        return None
    first, second = matches[-1]
    return first or second


def normalise_number(value: str) -> str:
    for pattern in _IGNORED:
        value = pattern.sub("", value.strip())
    return value.strip().lower()


def exact_match(extracted: str | None, gold: str | None) -> bool:
    """lm-eval's exact match after its ignore rules (so "18.00" is not "18": that is how the paper scored)."""
    if extracted is None or gold is None:
        return False
    return normalise_number(extracted) == normalise_number(gold)


@dataclass(frozen=True)
class LmEvalScores:
    strict: str | None
    strict_correct: bool
    flexible: str | None
    flexible_correct: bool


def lm_eval_scores(response: str | None, gold: str | None) -> LmEvalScores:
    strict, flexible = strict_answer(response), flexible_answer(response)
    return LmEvalScores(strict, exact_match(strict, gold), flexible, exact_match(flexible, gold))
