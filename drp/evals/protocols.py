"""Evaluation protocols: how a problem becomes a request, how long the answer may run, how it is scored.

`default` is drp's own: a chat request with the student family's instruction (`--prompt-template`), graded by
math-verify on the boxed answer.

`paper` is how the DRP paper measured (lm-eval 0.4.5 on vLLM, greedy): GSM8K is lm-eval's `gsm8k_cot_zeroshot`,
a raw completion (`/v1/completions`, no chat template) of `Q: {question}\\nA: Let's think step by step.`, cut at
the next `Q:`, capped at 40,000 tokens; the other benchmarks (the paper's own lm-eval task files for them are not
published) use lm-eval's zero-shot MATH layout `Problem: {problem}\\nAnswer:`, cut at the next `Problem:`,
capped at 130,000 tokens. Answers are scored three ways side by side: lm-eval's strict filter
(`The answer is N.`), its flexible filter (the last number), and math-verify.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PROTOCOLS = ("default", "paper")
DEFAULT_PROTOCOL = "default"


class ProtocolError(ValueError):
    """A protocol that does not exist, or settings it cannot take."""


@dataclass(frozen=True)
class Request:
    """One request: chat messages, or a raw prompt for /v1/completions (with its stop strings)."""

    messages: tuple[dict, ...] = ()
    prompt: str | None = None
    stop: tuple[str, ...] = ()

    @property
    def raw(self) -> bool:
        return self.prompt is not None

    @property
    def text(self) -> str:
        """What the model is asked, for the sample record."""
        return self.prompt if self.prompt is not None else self.messages[-1]["content"]


# ---------------------------------------------------------------- the paper's requests and caps

GSM8K_COT_ZEROSHOT = "Q: {question}\nA: Let's think step by step."
MATH_ZEROSHOT = "Problem: {question}\nAnswer:"
PAPER_GSM8K_CAP = 40_000
PAPER_OTHER_CAP = 130_000
# Greedy, as in the paper's lm-eval runs (temperature 0, top_p 1, one sample per problem).
PAPER_TEMPERATURE, PAPER_TOP_P = 0.0, 1.0


def is_gsm8k(benchmark: str) -> bool:
    """gsm8k, gsm8k:train, openai/gsm8k... (a problems file is GSM8K-style only when named so)."""
    base = benchmark.partition(":")[0].lower()
    return base.rsplit("/", 1)[-1] == "gsm8k"


def paper_request(benchmark: str, question: str) -> Request:
    # Plain replacement, not str.format: problems are full of LaTeX braces.
    if is_gsm8k(benchmark):
        return Request(prompt=GSM8K_COT_ZEROSHOT.replace("{question}", question), stop=("Q:",))
    return Request(prompt=MATH_ZEROSHOT.replace("{question}", question), stop=("Problem:",))


def paper_cap(benchmark: str) -> int:
    return PAPER_GSM8K_CAP if is_gsm8k(benchmark) else PAPER_OTHER_CAP


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """The text before the first stop string, as lm-eval cuts it (vLLM leaves the stop string out;
    `transformers serve` keeps it, and may run a token past it)."""
    cuts = [text.find(marker) for marker in stop if marker and marker in text]
    return text[: min(cuts)] if cuts else text


# ---------------------------------------------------------------- lm-eval's two answer filters

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


def check(name: str) -> str:
    if name not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    return name
