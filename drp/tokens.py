"""Token counting with a real tokenizer (the student's), loaded once per name (per process), and its Rust tokenizer
kept between processes (drp.tokenizer_cache): most commands then never import transformers."""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from pathlib import Path

from drp import tokenizer_cache
from drp.errors import UserError
from drp.paths import default_tokenizer

_APPROX = re.compile(r"\w+|[^\w\s]")
_HUB_ID = re.compile(r"[\w.-]+(?:/[\w.-]+)?")  # what a hub repository id may look like (name or namespace/name)
APPROXIMATE = "approximate:words+punctuation"


_RECENT = 256  # how many texts' counts are kept
_COUNTED_ONCE = 200  # characters: shorter texts cost less to count again than to keep


class TokenizerError(UserError, ValueError):
    """A tokenizer the user named that cannot be loaded."""


class TokenCounter:
    """Counts tokens with a Hugging Face tokenizer; `name` says which one was used (for the record)."""

    def __init__(self, name: str | None = None):
        self.name = name or default_tokenizer()
        self._fast = None  # the Rust tokenizer, when there is one: counted without offsets, a fifth cheaper
        self._full = None  # transformers' tokenizer: loaded only when needed (a chat template, no Rust tokenizer)
        self.eos_token: str | None = None  # the end-of-sequence text (a stop string for raw completions), if known
        self._has_chat_template = False
        # The texts counted lately and their counts: a long trace's windows count the same instructions and
        # question for every window they try, and a prompt again once it is rendered.
        self._recent = lru_cache(maxsize=_RECENT)(self._uncounted)
        try:
            loaded = _load(self.name)
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
            self.name = APPROXIMATE
            return
        if isinstance(loaded, tokenizer_cache.KeptTokenizer):
            self._fast, self.eos_token, self._has_chat_template = (
                loaded.backend,
                loaded.eos_token,
                loaded.has_chat_template,
            )
        else:
            self._full, self._fast = loaded, getattr(loaded, "backend_tokenizer", None)
            eos = getattr(loaded, "eos_token", None)
            self.eos_token = eos if isinstance(eos, str) and eos else None
            self._has_chat_template = bool(getattr(loaded, "chat_template", None))

    def count(self, text: str | None) -> int:
        if not text:
            return 0
        return self._uncounted(text) if len(text) < _COUNTED_ONCE else self._recent(text)

    def _uncounted(self, text: str) -> int:
        if self._fast is not None:
            return len(self._fast.encode_batch_fast([text], add_special_tokens=False)[0].ids)
        if self._full is not None:
            return len(self._full.encode(text, add_special_tokens=False))
        return approximate_count(text)

    def count_chat(self, messages: list[dict]) -> int:
        """A chat prompt's tokens as the model reads them: through its chat template when it has one."""
        if self._has_chat_template:
            if self._full is None:
                self._full = _load_with_transformers(self.name)
            ids = self._full.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False)
            return len(ids)
        return sum(self.count(message.get("content")) for message in messages)


@lru_cache(maxsize=8)
def _load(name: str):
    """A tokenizer folder's kept Rust tokenizer (drp.tokenizer_cache), else transformers' tokenizer (kept for
    the next process when it is a folder)."""
    entry = tokenizer_cache.entry_for(name)
    kept = tokenizer_cache.load(entry) if entry is not None else None
    if kept is not None:
        return kept
    if not Path(name).exists() and not _HUB_ID.fullmatch(name):
        # neither a folder nor a name the hub could have: said at once, not after seconds importing transformers
        raise OSError("no such tokenizer folder, and not a Hugging Face hub id (namespace/name)")
    tokenizer = _load_with_transformers(name)
    if entry is not None:
        tokenizer_cache.keep(entry, tokenizer)
    return tokenizer


@lru_cache(maxsize=8)
def _load_with_transformers(name: str):
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
