"""Evaluation protocols: how a problem becomes a request, how long the answer may run, how it is scored.

`default` is drp's own: a chat request with the student family's instruction (`--prompt-template`), graded by
math-verify on the boxed answer.

`paper` is how the DRP paper measured (lm-eval 0.4.5 on vLLM, greedy): GSM8K is lm-eval's `gsm8k_cot_zeroshot`,
a raw completion (`/v1/completions`, no chat template, no BOS: `add_special_tokens` false, as lm-eval sends it) of
`Q: {question}\\nA: Let's think step by step.`, stopped at the next `Q:` and at lm-eval's end markers (`</s>`,
`<|im_end|>`, the model's EOS), capped at 40,000 tokens, and scored three ways side by side: lm-eval's strict filter
(`The answer is N.`), its flexible filter (the last number), and math-verify; `--score` names the headline.
The other benchmarks are an ASSUMPTION: the paper's lm-eval task files for MATH-500 / AIME24 / AMC23 are not
published (the task names in its scripts do not exist in lm-eval 0.4.5), so drp sends lm-eval's zero-shot MATH
layout `Problem: {problem}\\nAnswer:`, stopped at the next `Problem:` and the same end markers, capped at 130,000
tokens, and scores them by math-verify only (lm-eval's GSM8K filters are not applied to them).
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


# lm-eval 0.4.5 stops every generation at these too, besides the task's own `until` (and the tokenizer's EOS).
LM_EVAL_END_MARKERS = ("</s>", "<|im_end|>")
# The MATH-500 / AIME24 / AMC23 prompts are our assumption (see above): said in every metrics.json they score.
ASSUMED_PROMPT_NOTE = (
    "assumed prompt: the paper's lm-eval task files for this benchmark are unpublished; drp sends "
    "lm-eval's zero-shot MATH layout 'Problem: ...\\nAnswer:' and scores by math-verify only "
    "(lm-eval's GSM8K filters do not apply)"
)


def paper_stops(own: str, eos: str | None = None) -> tuple[str, ...]:
    """The task's own stop string, lm-eval's end markers and the model's EOS, each once, in that order."""
    return tuple(dict.fromkeys(s for s in (own, *LM_EVAL_END_MARKERS, eos) if s))


def paper_request(benchmark: str, question: str, eos: str | None = None) -> Request:
    # Plain replacement, not str.format: problems are full of LaTeX braces.
    if is_gsm8k(benchmark):
        return Request(prompt=GSM8K_COT_ZEROSHOT.replace("{question}", question), stop=paper_stops("Q:", eos))
    return Request(prompt=MATH_ZEROSHOT.replace("{question}", question), stop=paper_stops("Problem:", eos))


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


# ---------------------------------------------------------------- the headline score under `paper`

SCORES = ("strict", "flexible", "math-verify")
# The paper reports one accuracy per model from lm-eval's gsm8k_cot_zeroshot, which computes both filters, without
# saying which. Its unpruned baseline (R1-Distill-Qwen-7B, 91.7%) closes with a boxed answer, not "The answer is
# N.", so only the flexible filter (the last number) can give it that score; the same filter must then score the
# pruned students beside it. Hence flexible by default; strict is what the pruned path's closing line targets.
DEFAULT_SCORE = "flexible"


def headline_correct(record: dict, score: str) -> bool:
    """A paper-protocol sample's verdict under `score`; math-verify's where lm-eval's filters were not applied
    (the non-GSM8K benchmarks)."""
    if score != "math-verify" and f"{score}_correct" in record:
        return bool(record[f"{score}_correct"])
    return bool(record.get("math_verify_correct", record.get("correct")))


def check_score(name: str) -> str:
    if name not in SCORES:
        raise ProtocolError(f"unknown score {name!r}; choose one of {', '.join(SCORES)}")
    return name


def check(name: str) -> str:
    if name not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    return name
