r"""Teacher replies are JSON, and math teachers write LaTeX inside it with single backslashes.

JSON reads `"\frac{a}{b}"` as a form feed and `rac{a}{b}`, `\theta` as a tab and `heta`, `\boxed` as a
backspace and `oxed`, `\right` as a carriage return and `ight`, `\neq` as a newline and `eq`; and it refuses
`\sqrt` or `\(` outright. Such a reply parses, and the pruned text would carry the control characters into
the training data. So every reply is decoded here:

1. backslashes that start no JSON escape (`\sqrt`, `\(`, `\,`, a `\u` without four hex digits) are doubled,
   so the reply parses with the LaTeX intact;
2. in the decoded strings, a control character that a LaTeX command turned into is turned back: a form feed,
   backspace or carriage return followed by letters always (no text means those), a newline or tab when
   the letters after it spell a LaTeX command (`\neq`, `\times`, `\text`; a newline before "The" stays one).
   A few commands are also a line break before a word (`\ni` / "i", `\nless` / "less", `\tan` / "an"):
   those follow the rest of the reply — LaTeX when it swallowed other commands too, a line break when it
   escapes its LaTeX properly (`\\frac`) — and when the reply shows neither, it is retried with feedback;
3. a string that still holds a control character other than newline and tab is refused: the reply is
   retried, and the feedback says where and how to escape.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

# JSON's escapes: \" \\ \/ \b \f \n \r \t \uXXXX. Anything else after a backslash is LaTeX (or a typo).
_ESCAPE = re.compile(r'\\(u[0-9a-fA-F]{4}|["\\/bfnrt]|.)', re.S)
_VALID_ESCAPES = '"\\/bfnrt'

# Control characters that are JSON escapes of a letter, and that letter.
_ESCAPED_LETTER = {"\b": "b", "\f": "f", "\r": "r", "\n": "n", "\t": "t"}
_ALWAYS_LATEX = "\b\f\r"  # backspace, form feed, carriage return before letters: never meant as such
_FOLLOWED_BY_LETTERS = re.compile("([\b\f\r\n\t])([A-Za-z]+)")
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # control characters other than newline and tab
_BACKSLASH_COMMAND = re.compile(r"\\[A-Za-z]")
_LEADING_LETTERS = re.compile(r"[A-Za-z]*")
_LONE_BACKSLASH = re.compile(r"(?<!\\)\\(?=\n|$)")

# LaTeX commands that begin with n or t (LaTeX, amsmath, amssymb, textcomp): after a newline or a tab, these
# letters are the command, not a word. Commands with other initials need no list (see the module notes).
LATEX_N_T_COMMANDS = frozenset(
    """
    nabla natural ncong ne nearrow neg neq nexists ngeq ngeqq ngeqslant ngtr ni nleftarrow nLeftarrow
    nleftrightarrow nLeftrightarrow nleq nleqq nleqslant nless nmid nobreak noindent nolimits nolinebreak
    nonumber normalsize not notag notin nparallel nprec npreceq nrightarrow nRightarrow nshortmid
    nshortparallel nsim nsubseteq nsubseteqq nsucc nsucceq nsupseteq nsupseteqq ntriangleleft ntrianglelefteq
    ntriangleright ntrianglerighteq nu numberwithin nvdash nvDash nVdash nVDash nwarrow newcommand newline newpage
    tag tan tanh tau tbinom text textasciicircum textasciitilde textbackslash textbf textcolor textdegree
    textdiv textellipsis textemdash textendash textit textmd textnormal textperiodcentered textpm textrm
    textsc textsf textsl textstyle textsubscript textsuperscript texttimes texttt textup textwidth tfrac
    therefore theta thickapprox thicksim thinspace tilde times tiny to top triangle triangledown
    triangleleft trianglelefteq triangleq triangleright trianglerighteq tt twoheadleftarrow twoheadrightarrow
""".split()
)
# ...of which these are also a line break (or tab) before a letter or an English word.
AMBIGUOUS_COMMANDS = frozenset("ne ni nu neg nless nmid nparallel tan to top tt".split())


class ReplyJSONError(ValueError):
    """A reply that cannot be used as it is; the message is feedback for the teacher."""


@dataclass
class _Evidence:
    """How the reply writes its LaTeX, for the commands that are also a line break before a word."""

    swallowed: int = 0  # LaTeX written with single backslashes: stray ones doubled, unambiguous commands restored
    escaped: bool = False  # LaTeX written properly, as `\\cmd`
    ambiguous: list[str] = field(default_factory=list)


def decode(text: str):
    """The JSON value of a reply (stray backslashes doubled first), its strings cleaned (see the notes)."""
    evidence = _Evidence()
    escaped = _escape_stray(text, evidence)
    try:
        value = json.loads(escaped, strict=False)
    except json.JSONDecodeError as exc:
        raise ReplyJSONError(
            f"the reply is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    return _clean(value, evidence)


def clean(value):
    """A reply the client decoded already (a tool call's arguments), cleaned as `decode` cleans."""
    evidence = _Evidence(escaped=any(_BACKSLASH_COMMAND.search(text) for text in strings_in(value)))
    return _clean(value, evidence)


def _escape_stray(text: str, evidence: _Evidence) -> str:
    for match in _ESCAPE.finditer(text):  # first, how does this reply write its LaTeX?
        escaped, after = match.group(1), _LEADING_LETTERS.match(text, match.end()).group()
        if escaped == "\\":
            evidence.escaped = evidence.escaped or bool(after)  # `\\frac`: it knows how to write LaTeX in JSON
        elif escaped in _ESCAPED_LETTER.values() and after:
            command = escaped + after
            if escaped in "bfr" or (command in LATEX_N_T_COMMANDS and command not in AMBIGUOUS_COMMANDS):
                evidence.swallowed += 1  # `\frac`, `\theta`: written with one backslash
        elif len(escaped) != 5 and escaped not in _VALID_ESCAPES:
            evidence.swallowed += 1  # `\sqrt`, `\(`: no JSON escape at all
    # A reply that writes its LaTeX with single backslashes writes LaTeX's own `\\` (a line break) as is, too.
    keep_pairs = evidence.swallowed > 0 and not evidence.escaped

    def escape(match: re.Match) -> str:
        escaped = match.group(1)
        if escaped == "\\" and keep_pairs:
            return "\\\\\\\\"
        if len(escaped) == 5 or escaped in _VALID_ESCAPES:
            return match.group(0)
        return "\\\\" + escaped

    return _ESCAPE.sub(escape, text)


def _clean(value, evidence: _Evidence):
    for text in strings_in(value):  # first look: how does this reply write its LaTeX?
        _restore(text, None, evidence)
    if evidence.ambiguous and not evidence.swallowed and not evidence.escaped:
        spots = ", ".join(dict.fromkeys(evidence.ambiguous))
        raise ReplyJSONError(
            f"the reply holds {spots}: a LaTeX command or a line break before a word? In JSON, write each backslash "
            'of LaTeX doubled ("\\\\nu", "\\\\frac"); write a line break only where one belongs'
        )
    problems: list[str] = []
    cleaned = _walk(value, "reply", lambda text: _restore(text, evidence.swallowed > 0, None), problems)
    if problems:
        raise ReplyJSONError(
            "the reply's strings hold control characters (" + "; ".join(problems[:3]) + "): in JSON, write each "
            'backslash of LaTeX doubled ("\\\\frac", "\\\\theta", "\\\\boxed"), and a line break as \\n'
        )
    return cleaned


def _restore(text: str, ambiguous_as_latex: bool | None, evidence: _Evidence | None) -> str:
    """One decoded string with its swallowed LaTeX commands put back. Commands that may be a line break before
    a word are put back when `ambiguous_as_latex`; with `evidence`, only counted."""

    def restore(match: re.Match) -> str:
        control, letters = match.group(1), match.group(2)
        command = _ESCAPED_LETTER[control] + letters
        if control not in _ALWAYS_LATEX and command not in LATEX_N_T_COMMANDS:
            return match.group(0)  # a line break or tab before a word
        if command in AMBIGUOUS_COMMANDS:
            if evidence is not None:
                evidence.ambiguous.append(f"{control!r} before {letters!r}")
            if not ambiguous_as_latex:
                return match.group(0)
        elif evidence is not None:
            evidence.swallowed += 1
        return "\\" + command

    text = _FOLLOWED_BY_LETTERS.sub(restore, text).replace("\r\n", "\n")
    # A lone backslash before a line break or at the end means nothing in LaTeX: it is what JSON left of `\\`.
    return _LONE_BACKSLASH.sub(r"\\\\", text)


def strings_in(value):
    """Every string inside a parsed JSON value, depth first."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def _walk(value, where: str, fix, problems: list[str]):
    if isinstance(value, str):
        text = fix(value)
        found = _FORBIDDEN.search(text)
        if found:
            problems.append(f"U+{ord(found.group()):04X} in {where} before {text[found.end() : found.end() + 12]!r}")
        return text
    if isinstance(value, dict):
        return {key: _walk(item, f"{where}.{key}", fix, problems) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, f"{where}[{index}]", fix, problems) for index, item in enumerate(value)]
    return value
