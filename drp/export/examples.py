"""One accepted trace → one prompt–completion example in the student's chat format.

The prompt is a list of chat messages (optional system + user: question and instruction); the completion
is one assistant message laid out by drp.layout.sft_completion. This is TRL's conversational
prompt–completion format. `drp distill` renders it to strings itself, because R1-style chat templates
drop everything before `</think>` from an assistant turn.
"""

from __future__ import annotations

from typing import Literal

from drp.export.sources import AcceptedTrace
from drp.layout import answer_line, sft_completion, short_answer, user_message

AnswerStyle = Literal["full", "short", "answer-line"]


def build_example(
    trace: AcceptedTrace,
    run: str,
    example_id: str,
    instruction: str | None,
    system_prompt: str | None,
    answer_style: AnswerStyle,
) -> dict:
    """The exported row: chat prompt + completion, and the plain fields they were built from."""
    answer_section = trace.answer_section
    # An empty answer section would teach the student to stop without committing to an answer.
    style = answer_style
    if style == "full" and not answer_section.strip():
        style = "short"
    if style == "short":
        answer_section = short_answer(trace.answer)
    elif style == "answer-line":  # the closing line lm-eval's strict filter reads (the paper's layout)
        answer_section = answer_line(trace.answer)
    prompt = [{"role": "system", "content": system_prompt}] if system_prompt else []
    prompt.append({"role": "user", "content": user_message(trace.question, instruction)})
    return {
        "id": example_id,
        "run": run,
        "trace_id": trace.trace_id,
        "prompt": prompt,
        "completion": [{"role": "assistant", "content": sft_completion(trace.thinking, answer_section)}],
        "question": trace.question,
        "thinking": trace.thinking.strip(),
        "answer_section": answer_section.strip(),
        "answer": trace.answer or "",
        "gold_answer": trace.gold_answer or "",
        "answer_style": style,
        "thinking_tokens_before": trace.tokens.get("thinking_before"),
        "thinking_tokens_after": trace.tokens.get("thinking_after"),
        "response_tokens_before": trace.tokens.get("response_before"),
        "response_tokens_after": trace.tokens.get("response_after"),
    }
