"""Token counting with a real tokenizer (the student's), loaded once per name."""

from __future__ import annotations

import re
from functools import lru_cache

from drp.paths import default_tokenizer

_APPROX = re.compile(r"\w+|[^\w\s]")


class TokenCounter:
    """Counts tokens with a Hugging Face tokenizer; `name` says which one was used (for the record)."""

    def __init__(self, name: str | None = None):
        self.name = name or default_tokenizer()
        self._tokenizer = _load(self.name)

    def count(self, text: str | None) -> int:
        if not text:
            return 0
        return len(self._tokenizer.encode(text, add_special_tokens=False))


@lru_cache(maxsize=8)
def _load(name: str):
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # a tokenizer-class notice on every load is noise here
    return AutoTokenizer.from_pretrained(name)


def approximate_count(text: str) -> int:
    """Words and punctuation marks: only for quick previews where no tokenizer is wanted."""
    return len(_APPROX.findall(text or ""))
