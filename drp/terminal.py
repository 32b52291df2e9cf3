"""Text from a run (trace ids, answers, teacher replies, error texts) on its way to a terminal.

Such text is data, never commands to the terminal: ESC sequences could clear the screen, move the cursor,
set the window title or hide what follows, and a right-to-left override reorders a line. Every C0 control
(but newline and tab), DEL, every C1 control, the bidirectional overrides and lone surrogates (which no
terminal can even encode) are printed as visible escapes (`\\x1b`, `\\u202e`). Rich output gets the same text
as `Text`, never as markup, so `[bold]` in an id prints as it is.
"""

from __future__ import annotations

import re

_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_LINE_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def _json_escape(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def printable(text: object, one_line: bool = False) -> str:
    """`text` safe to print: control characters as visible escapes; with `one_line`, newlines and tabs too
    (a field of a one-record-per-line listing, such as an id)."""
    text = "" if text is None else str(text)
    pattern = _LINE_BREAKS if one_line else _UNPRINTABLE
    return text if text.isascii() and text.isprintable() else pattern.sub(_escape, text)


def printable_json(text: str) -> str:
    """JSON text safe to print, still valid JSON: what `json.dumps(ensure_ascii=False)` leaves raw (C1
    controls, bidirectional overrides, lone surrogates) as `\\uXXXX` escapes; they only occur inside strings."""
    return _UNPRINTABLE.sub(_json_escape, text)


def echo(text: object = "", err: bool = False, one_line: bool = False) -> None:
    """typer.echo of run data, made printable."""
    import typer

    typer.echo(printable(text, one_line), err=err)
