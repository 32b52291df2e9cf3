"""The trace layout, in one place: how a reasoning model's response is laid out (thinking inside `<think>` …
`</think>`, then the answer section), the SFT completion built from a pruned trace, the one short-answer
rendering, and the instruction each student family gets after the problem.

Train-time and eval-time prompts must match: `drp export` and `drp eval` / `drp generate` both take the
family instructions from here. Nothing heavy is imported, so commands can use it for their defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


@dataclass(frozen=True)
class SplitResponse:
    thinking: str
    answer_section: str
    complete: bool  # False when the thinking never closed (generation ran out of tokens)


def thinking_prefix(response: str) -> str | None:
    """The response up to and including its first `</think>` (what token counts call thinking); None when the
    thinking never closes."""
    close = response.find(THINK_CLOSE)
    return None if close < 0 else response[: close + len(THINK_CLOSE)]


def split_response(response: str) -> SplitResponse:
    """`<think>…</think>answer` or `…</think>answer` (the opening tag was in the prompt)."""
    close = response.find(THINK_CLOSE)
    if close < 0:
        body = response.split(THINK_OPEN, 1)[-1]
        return SplitResponse(thinking=body.strip(), answer_section="", complete=False)
    thinking = response[:close]
    if THINK_OPEN in thinking:
        thinking = thinking.split(THINK_OPEN, 1)[1]
    return SplitResponse(
        thinking=thinking.strip(), answer_section=response[close + len(THINK_CLOSE) :].strip(), complete=True
    )


# Between the thinking and the answer section of a response (the report joins the two with it too).
SECTION_BREAK = f"\n{THINK_CLOSE}\n\n"


def join_response(thinking: str, answer_section: str) -> str:
    """The response layout the student is trained on (the opening <think> belongs to the prompt)."""
    return f"{thinking.strip()}{SECTION_BREAK}{answer_section.strip()}"


def answer_section_after(thinking: str | None, response: str | None) -> str | None:
    """What follows `thinking` and its closing tag in `response`; None when the response does not start with
    that thinking (for runs stored before the pruned answer section had its own column)."""
    if not response or not thinking or not response.startswith(thinking):
        return None
    rest = response[len(thinking) :].lstrip()
    if not rest.startswith(THINK_CLOSE):
        return None
    return rest[len(THINK_CLOSE) :].strip()


def sft_completion(thinking: str, answer_section: str) -> str:
    """The assistant turn of an SFT example: the whole response, its opening tag included."""
    return f"{THINK_OPEN}\n{join_response(thinking, answer_section)}"


def completion_thinking(completion: str) -> str:
    """The thinking inside a completion; empty when the thinking never closes."""
    split = split_response(completion)
    return split.thinking if split.complete else ""


def short_answer(answer: str | None) -> str:
    """The answer section reduced to the final answer alone."""
    return f"The final answer is $\\boxed{{{answer or ''}}}$."


def answer_line(answer: str | None) -> str:
    """The paper's closing sentence, which its evaluation (lm-eval's gsm8k_cot_zeroshot) reads strictly."""
    return f"The answer is {answer or ''}."


# What DeepSeek recommends for R1 and its distilled students on math problems: no system prompt, this
# instruction on its own line after the problem.
BOXED_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
FAMILY_INSTRUCTIONS: dict[str, str | None] = {
    "r1-distill-qwen": BOXED_INSTRUCTION,
    "qwen-math": BOXED_INSTRUCTION,
    "plain": None,
}
DEFAULT_FAMILY = "r1-distill-qwen"
DEFAULT_INSTRUCTION = FAMILY_INSTRUCTIONS[DEFAULT_FAMILY]


def family_template(family: str) -> str:
    """The family's user message with a `{problem}` placeholder."""
    instruction = FAMILY_INSTRUCTIONS[family]
    return f"{{problem}}\n{instruction}" if instruction else "{problem}"


def user_message(question: str, instruction: str | None) -> str:
    """The question, then the instruction on its own line (none when empty)."""
    question = question.strip()
    return f"{question}\n{instruction.strip()}" if instruction and instruction.strip() else question
