"""Lone UTF-16 surrogates: code points that JSON's `\\udc80` escapes (and Python's surrogateescape) can put in
a str, but that no UTF-8 file, SQLite text or terminal can hold. An input line holding one is refused as that
line's failure (drp.input_traces); any other text (a teacher's reply) has them replaced before it is stored."""

from __future__ import annotations

import re

_LONE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def without_surrogates(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD (ASCII text is returned at once)."""
    return text if text.isascii() or not _LONE.search(text) else _LONE.sub(REPLACEMENT, text)


def first_surrogate(value, where: str = "") -> tuple[str, str] | None:
    """(where, the surrogate's escape) of the first lone surrogate in a JSON-like value (keys included)."""
    if isinstance(value, str):
        found = None if value.isascii() else _LONE.search(value)
        return (where or "the text", found.group().encode("unicode_escape").decode()) if found else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            hit = first_surrogate(key, f"a key of {where or 'the record'}") or first_surrogate(item, name)
            if hit:  # (a key holding one is found before any name built from it)
                return hit
    if isinstance(value, (list, tuple)):
        for number, item in enumerate(value):
            if hit := first_surrogate(item, f"{where}[{number}]"):
                return hit
    return None
