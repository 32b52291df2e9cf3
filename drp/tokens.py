"""Token counting with a real tokenizer (the student's), loaded once per name."""

from __future__ import annotations

import re
import warnings
from functools import lru_cache

from drp.errors import UserError
from drp.paths import default_tokenizer

_APPROX = re.compile(r"\w+|[^\w\s]")
APPROXIMATE = "approximate:words+punctuation"


class TokenizerError(UserError, ValueError):
    """A tokenizer the user named that cannot be loaded."""


class TokenCounter:
    """Counts tokens with a Hugging Face tokenizer; `name` says which one was used (for the record)."""

    def __init__(self, name: str | None = None):
        self.name = name or default_tokenizer()
        self._fast = None  # the Rust tokenizer, when there is one: counted without offsets, a fifth cheaper
        try:
            self._tokenizer = _load(self.name)
            self._fast = getattr(self._tokenizer, "backend_tokenizer", None)
        except Exception as exc:  # noqa: BLE001 - offline hub, missing folder: say so, and say what we do
            if name is not None:
                raise TokenizerError(
                    f"cannot load tokenizer {name!r}: {_first_line(exc)} (pass a tokenizer folder or a hub id)"
                ) from None
            # No explicit choice and the default is out of reach (no ../shared, no hub): an approximate
            # count keeps the run going, and its name says it is approximate wherever it is recorded.
            warnings.warn(
                f"default tokenizer {self.name!r} unavailable ({type(exc).__name__}); "
                "token counts are approximate (words and punctuation): pass --tokenizer",
                stacklevel=2,
            )
            self.name, self._tokenizer = APPROXIMATE, None

    @property
    def eos_token(self) -> str | None:
        """The tokenizer's end-of-sequence text (a stop string for raw completions); None when unknown."""
        token = getattr(self._tokenizer, "eos_token", None) if self._tokenizer is not None else None
        return token if isinstance(token, str) and token else None

    def count(self, text: str | None) -> int:
        if not text:
            return 0
        if self._tokenizer is None:
            return approximate_count(text)
        if self._fast is not None:
            return len(self._fast.encode_batch_fast([text], add_special_tokens=False)[0].ids)
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def count_chat(self, messages: list[dict]) -> int:
        """A chat prompt's tokens as the model reads them: through its chat template when it has one."""
        if self._tokenizer is not None and getattr(self._tokenizer, "chat_template", None):
            ids = self._tokenizer.apply_chat_template(
                messages, tokenize=True, add_generation_prompt=True, return_dict=False
            )
            return len(ids)
        return sum(self.count(message.get("content")) for message in messages)


@lru_cache(maxsize=8)
def _load(name: str):
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # a tokenizer-class notice on every load is noise here
    return AutoTokenizer.from_pretrained(name)


def approximate_count(text: str) -> int:
    """Words and punctuation marks: only for quick previews where no tokenizer is wanted."""
    return len(_APPROX.findall(text or ""))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
