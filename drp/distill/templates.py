"""Chat layouts a student can be trained in besides its tokenizer's own.

`qwen` is the layout the DRP paper's students were trained in (LLaMA-Factory's `template: qwen`): ChatML turns, a
default system prompt when the example has none, every turn closed by `<|im_end|>`. The R1-Distill tokenizers do
not know `<|im_start|>` / `<|im_end|>` as special tokens, so these markers are plain text to them (as they were in
the paper's run unless LLaMA-Factory added them); the paper's evaluation stops generation at the text `<|im_end|>`,
and so does drp's (drp/evals/protocols/paper.py)."""

from __future__ import annotations

QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."  # LLaMA-Factory's qwen default

# Written for drp: ChatML with the default system prompt above.
QWEN_CHATML = (  # no whitespace control next to the newlines: they are part of the layout
    "{% if not messages or messages[0]['role'] != 'system' %}"
    "<|im_start|>system\n" + QWEN_SYSTEM + "<|im_end|>\n"
    "{% endif %}"
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TEMPLATES: dict[str, str | None] = {"model": None, "qwen": QWEN_CHATML}  # name → template (None: the tokenizer's)
TURN_ENDS: dict[str, str | None] = {"model": None, "qwen": "<|im_end|>"}  # closes the assistant turn before EOS
