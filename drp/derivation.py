"""Does a piece of reasoning still carry the computation that yields its answer?

A deterministic check for the verifier. Every number the text writes is a *mention*. A mention is supported
when its value is given (by the question, or used without derivation by the original the text was pruned
from: 31 days in May), or when the text derives it from supported mentions before it (or beside it, in the
same sentence):
- explicitly: an equation the text writes, `45 - 7 = 38`, `50 cookies divided by 5 jars equals 10`,
  `\\frac{1}{5} \\times 100 = 20`, whose left side evaluates to its right side;
- implicitly: one operation on two supported values the text wrote (or one and a common constant such as 60
  minutes, as a factor): `She ate 5 of them, leaving 50` after `55 cookies` (55 - 5), `80% of 20`.
The answer passes when the text derives it. A bare assertion ("the result is $168") derives nothing, and a
reasoning that lost the step computing an operand (the $7 discount) no longer supports the final operation.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

# Facts a solution may use without writing them down (days in a week, minutes in an hour, percent, ...).
# (Not 2, 10 or 100: doubling and tenfold coincidences are too common; "twice", "half" and "5%" are written.)
CONSTANTS = frozenset(float(n) for n in (7, 12, 24, 52, 60, 365, 1000, 3600))  # as factors only
_WINDOW = 24  # how many recent supported values an implicit step may take an operand from

_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000, "dozen": 12,
    "twice": 2, "double": 2, "doubled": 2, "triple": 3, "tripled": 3, "half": 2, "halves": 2, "quarter": 4,
    "quarters": 4, "third": 3, "thirds": 3, "fifth": 5, "fifths": 5, "sixth": 6, "eighth": 8, "tenth": 10,
}
# Singular fraction words are the fraction itself ("a third" is 1/3); plurals only name the denominator
# ("two-thirds" is not 1/3). Either way the denominator is written.
_FRACTION_WORDS = ("half", "quarter", "third", "fifth", "sixth", "eighth", "tenth")
_DENOMINATOR_WORDS = ("halves", "quarters", "thirds", "fifths")
_MENTION = re.compile(
    r"(?P<fraction>(?<![\w./])\d+/\d+(?![\w/]))"
    r"|(?P<digits>(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,]*\d)|(?<![\w.])\d+(?:\.\d+)?)"
    r"|\b(?P<word>" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")\b",
    re.I,
)

# Spoken and LaTeX operators, rewritten to Python's before equations are read.
_SPOKEN = [
    (re.compile(r"\\frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}"), r"((\1)/(\2))"),
    (re.compile(r"\\(?:left|right|,|!|;|quad)"), " "),
    (re.compile(r"\\(?:times|cdot)|×|·|∗"), "*"),
    (re.compile(r"\\div|÷"), "/"),
    (re.compile(r"−|–"), "-"),
    (re.compile(r"(?<=\d)\s*[xX]\s*(?=\$?\d)"), " * "),
    (re.compile(r"\b(?:multiplied by|times)\b", re.I), " * "),
    (re.compile(r"\b(?:divided by|over)\b", re.I), " / "),
    (re.compile(r"\bplus\b", re.I), " + "),
    (re.compile(r"\bminus\b", re.I), " - "),
    (re.compile(r"\b(?:equals?|is equal to|gives(?: us)?|makes|results in|comes to|totals?|is|are|was|were)\b|≈", re.I), " = "),
    (re.compile(r"\\?%"), " % "),
]
# An equation as written: operands (with units, $ and words between them dropped) joined by operators, then `=`.
_EXPR_TOKEN = re.compile(r"\d+(?:\.\d+)?|[-+*/()%=]")
_MAY_HOLD_EQUATION = re.compile(r"=|≈|equal|gives|makes|results in|comes to|total|\bis\b|\bare\b|\bwas\b|\bwere\b", re.I)
_SENTENCE = re.compile(r"(?<=[.!?:;])\s+|\n+")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


@dataclass
class Derivation:
    """What the check found: whether the answer is derived, how, and which sentences carry its computation."""

    answer_derived: bool
    answer_mentioned: bool
    target: float | None = None
    sentences: list[str] = field(default_factory=list)
    given: frozenset = frozenset()
    origins: dict[float, tuple] = field(default_factory=dict)  # value → (how, sentence index), first derivation
    unsupported: list[str] = field(default_factory=list)  # numbers the text uses but never derives nor was given
    facts: frozenset = frozenset()  # their values
    written: dict[float, list[int]] = field(default_factory=dict)  # supported value → sentences writing it

    @property
    def derived(self) -> dict[str, str]:
        """Each derived value, shown, with the computation that first derives it."""
        return {_show(value): _explain(how) for value, (how, _) in self.origins.items()}

    def computations(self) -> list[tuple[int, tuple, float]]:
        """(sentence index, how, value) of every computation the answer depends on, the answer's first."""
        found, todo, seen = [], [self.target] if self.answer_derived else [], set()
        while todo:
            value = todo.pop(0)
            if value in seen or value not in self.origins:
                continue
            seen.add(value)
            how, index = self.origins[value]
            found.append((index, how, value))
            todo.extend(operand for operand in _operands(how) if operand not in self.given)
        return found

    def chain(self) -> dict[int, tuple[str, list[str]]]:
        """The sentences (by index) the answer's computation needs → (what the sentence contributes, the numbers
        it writes that the computation uses): those that compute the answer or a number it depends on, and those
        that write an operand an implicit step takes from elsewhere ("Patricia starts with 30 roses" before
        "... leaving her with 6")."""
        needed: dict[int, tuple[str, list[str]]] = {}

        def note(index: int, text: str, value: float) -> None:
            _, values = needed.setdefault(index, (text, []))
            if _show(value) not in values:
                values.append(_show(value))

        for index, how, value in self.computations():
            note(index, f"computes {_explain(how)}", value)
            for operand in sorted(_operands(how)):
                where = max((i for i in self.written.get(operand, []) if i <= index), default=None)
                if where == index:
                    note(index, f"computes {_explain(how)}", operand)
                elif where is not None and how[0] == "operation":
                    note(where, f"states {_show(operand)}, used in {_explain(how)}", operand)
        return dict(sorted(needed.items()))

    def lost_in(self, text: str) -> list[str]:
        """Numbers of this (original) computation of the answer that `text` no longer writes, with their use."""
        written = {_key(v) for _, values in _mentions(_clean(text)) for v in values}
        lost: dict[float, str] = {}
        for _, how, value in self.computations():
            if value not in written:
                lost.setdefault(value, f"{_show(value)} (computed by {_explain(how)})")
            for operand in _operands(how):
                implicit_constant = how[0] == "operation" and operand in CONSTANTS
                if operand not in written and not implicit_constant:
                    lost.setdefault(operand, f"{_show(operand)} (used in {_explain(how)})")
        return list(lost.values())

    def explain(self, answer: str) -> str:
        if self.answer_derived:
            return f"{answer} is derived: {_explain(self.origins[self.target][0])}"
        if not self.answer_mentioned:
            return f"the reasoning never writes the answer {answer}"
        missing = f" (it uses {', '.join(self.unsupported[:5])} without computing it)" if self.unsupported else ""
        return f"the reasoning states {answer} without the computation that yields it{missing}"


def check(text: str, answer: str, question: str = "", original: str | None = None) -> Derivation:
    """Whether `text` derives `answer` from the question's numbers through computations it writes down.
    With `original` (the text it was pruned from), numbers the original itself uses without deriving them
    (31 days in May, a minute and a half as 1.5) count as given: pruning must not drop computations, and
    these never had one."""
    target = _value(answer)
    target = None if target is None else _key(target)
    given = frozenset(_key(v) for _, vs in _mentions(question) for v in vs)
    if original is not None:
        given = given | _facts(original, question)
    recent: list[float] = []  # supported values, most recent last: the operands an implicit step may use
    supported: set[float] = set()
    origins: dict[float, tuple] = {}
    unsupported: list[str] = []
    facts: set[float] = set()
    written: dict[float, list[int]] = {}
    mentioned = False
    sentences = _SENTENCE.split(_clean(text or ""))
    for index, sentence in enumerate(sentences):
        mentions = _mention_parts(sentence)
        if not mentions:
            continue
        if target is not None and any(target in map(_key, values) for _, values, _ in mentions):
            mentioned = True
        equations = _equations(sentence) if _MAY_HOLD_EQUATION.search(sentence) else {}
        # Two passes: a sentence may name a result before its operands ("leaving 50 of the 55").
        pending = list(mentions)
        local: list[float] = []  # supported values this sentence writes
        for _ in range(2):
            still = []
            for raw, values, parts in pending:
                how = _support(values, supported, local, recent[-_WINDOW:], given, equations, target) if values else "part"
                if how is None:
                    still.append((raw, values, parts))
                    continue
                for value in values + parts:
                    key = _key(value)
                    if key not in supported:
                        supported.add(key)
                        recent.append(key)
                    local.append(key)
                    written.setdefault(key, []).append(index)
                if how not in ("given", "part"):
                    origins.setdefault(how[-1], (how, index))
            pending = still
        unsupported.extend(raw for raw, _, _ in pending if raw not in unsupported)
        facts.update(_key(value) for _, values, parts in pending for value in values + parts)
    return Derivation(target is not None and target in origins, mentioned, target, sentences, given, origins,
                      unsupported, frozenset(facts), written)


@lru_cache(maxsize=256)
def _facts(original: str, question: str) -> frozenset:
    """The numbers a text uses without deriving them (cached: every attempt of a trace asks again)."""
    return check(original, "", question).facts


@lru_cache(maxsize=256)
def own_derivation(text: str, answer: str, question: str = "") -> Derivation:
    """`check(text, answer, question, text)`: an original's derivation, which the pruner and the verifier both
    read on every attempt of a trace, so it is worked out once. Shared between callers: read only."""
    return check(text, answer, question, text)


def needed_passages(passages: list[str], text: str, answer: str, question: str = "") -> dict[int, tuple[str, list[str]]]:
    """Which passages of `text` (1-based, e.g. a trace's steps) hold the computation of the answer or of a
    number it depends on → (what the passage contributes, the numbers it writes that the computation uses).
    Empty when `text` does not derive its answer."""
    derivation = own_derivation(text, answer, question)
    found: dict[int, tuple[str, list[str]]] = {}
    squashed = [" ".join(p.split()) for p in passages]
    for index, (contribution, values) in derivation.chain().items():
        sentence = " ".join(derivation.sentences[index].split())
        for number, passage in enumerate(squashed, start=1):
            if sentence and passage and (sentence in passage or passage in sentence):
                _, kept = found.setdefault(number, (contribution, []))
                kept.extend(v for v in values if v not in kept)
    return dict(sorted(found.items()))


def writes_number(text: str) -> bool:
    """Whether a text writes any number, in digits or in words ("twice", "a third")."""
    return _MENTION.search(text) is not None


def states_value(text: str, value: str) -> bool:
    """Whether a text writes this number (in any of the forms a mention can take)."""
    target = _value(value)
    return target is not None and any(_key(target) in map(_key, values) for _, values in _mentions(_clean(text)))


def _operands(how: tuple) -> set[float]:
    return set(how[2]) if how[0] == "equation" else {how[1], how[3]}


def _support(values: tuple[float, ...], supported: set, local: list, recent: list, given: frozenset,
             equations: dict, target: float | None):
    """How a mention is supported: 'given', an equation, or one operation on supported values; None if not.
    For the answer itself a derivation is sought first, so an answer that happens to equal a given number
    still has to be computed. Operands written in the same sentence are tried first ("4 times 18 is 72")."""
    keys = [_key(value) for value in values]
    is_given = any(key in given for key in keys)
    if is_given and target not in keys:
        return "given"
    for key in keys:
        if key in equations and all(op in supported or op in given for op in equations[key][1]):
            return ("equation", equations[key][0], equations[key][1], key)
    nearby = [a for a in local if a not in keys]
    for key in keys:
        how = _operation(key, nearby, set(nearby)) or _operation(key, [*nearby, *reversed(recent)], supported)
        if how:
            return how
    return "given" if is_given else None


def _operation(key: float, first_operands: list[float], second_operands: set) -> tuple | None:
    """One operation yielding `key` from a written operand and another written value (or a common constant
    as a factor). Both operands must be written: "so she spent $38" after "$45" does not show the $7 coupon,
    even if the question mentions it."""
    # The innermost loop of the check: `round(…, _PLACES)` is `_key`, written out (a call per candidate costs more).
    for a in first_operands:
        for b, sign in ((key - a, "+"), (a - key, "-"), (key + a, "-")):
            b = round(b, _PLACES)
            if b and b != a and b in second_operands:  # a + a is a coincidence more often than a step
                return ("operation", a, sign, b, key)
        multiplicative = ((key / a if a else None, "*"), (a / key if key else None, "/"), (key * a, "/"))
        for number, (b, sign) in enumerate(multiplicative):
            if b is None or (b := round(b, _PLACES)) in (0, 1) or (sign == "/" and b == a):  # not 9 / 9 = 1
                continue
            # a constant scales the written operand (× 60, ÷ 12); it is never the numerator of c / a
            if b in second_operands or (b in CONSTANTS and number < 2):
                return ("operation", a, sign, b, key)
        if a and (b := round(key * 100 / a, _PLACES)) in second_operands:
            return ("operation", a, "%", b, key)
    return None


def _explain(how) -> str:
    if how[0] == "equation":
        return how[1]
    _, a, sign, b, value = how
    left = {"+": f"{_show(a)} + {_show(b)}", "-": f"{_show(max(a, b))} - {_show(min(a, b))}",
            "*": f"{_show(a)} × {_show(b)}", "/": f"{_show(max(a, b))} / {_show(min(a, b))}",
            "%": f"{_show(b)}% of {_show(a)}"}[sign]
    return f"{left} = {_show(value)}"


def _mentions(text: str) -> list[tuple[str, tuple[float, ...]]]:
    """Each number written in a text with every value it writes (80% is 80 and 0.8; 2/3 also writes 2 and 3)."""
    return [(raw, values + parts) for raw, values, parts in _mention_parts(text)]


# Sentences are read again and again: the original's in the pruner and in the verifier, and most of them again in
# the pruned text and on every retry. What a sentence writes depends on the sentence alone, so it is read once.
@lru_cache(maxsize=4096)
def _mention_parts(text: str) -> tuple[tuple[str, tuple[float, ...], tuple[float, ...]], ...]:
    """Each number written in a text: (as written, the values it stands for, the parts it also writes). A part
    (the 3 of 2/3, the "thirds" of two-thirds) can be an operand, but is never itself a result."""
    found = []
    for match in _MENTION.finditer(text):
        raw = match.group()
        if match.lastgroup == "fraction":
            top, bottom = (float(part) for part in raw.split("/"))
            found.append((raw, (top / bottom,) if bottom else (), (top, bottom)))
        elif match.lastgroup == "word":
            word = raw.lower()
            value = float(_WORDS[word])
            if word in _FRACTION_WORDS:  # "a third": 1/3, written with a 3
                found.append((word, (1 / value,), (value,)))
            elif word in _DENOMINATOR_WORDS:  # "two-thirds": only the 3 is written here
                found.append((word, (), (value,)))
            else:
                found.append((word, (value,), ()))
        else:
            value = float(raw.replace(",", ""))
            percent = text[match.end() : match.end() + 9].lstrip().startswith(("%", "\\%", "percent"))
            found.append((raw, (value, value / 100) if percent else (value,), ()))
    return tuple(found)


@lru_cache(maxsize=4096)
def _equations(sentence: str) -> dict[float, tuple[str, frozenset[float]]]:
    """Results of the equations written in a sentence whose left side really evaluates to them:
    result → (the equation, its operands). Shared between callers (cached, like `_mention_parts`): read only."""
    text = sentence
    for pattern, replacement in _SPOKEN:
        text = pattern.sub(replacement, text)
    tokens = _drop_empty_brackets(_EXPR_TOKEN.findall(text.replace(",", "")))
    results: dict[float, tuple[str, frozenset[float]]] = {}
    for index, token in enumerate(tokens):
        if token != "=" or index + 1 >= len(tokens) or not _is_number(tokens[index + 1]):
            continue
        result = float(tokens[index + 1])
        left = _left_side(tokens[:index])
        while len(left) > 1:
            value = _evaluate(left)
            if value is not None and _close(value, result):
                operands = frozenset(_key(float(t)) for t in left if _is_number(t))
                results.setdefault(_key(result), (f"{' '.join(left)} = {tokens[index + 1]}", operands))
                break
            left = left[1:]  # a shorter left side: words were dropped, so earlier numbers may not belong to it
    return results


def _drop_empty_brackets(tokens: list[str]) -> list[str]:
    """`$1.00 (pennies) + $2.00 (nickels)`: the words are gone, their brackets must go too."""
    out: list[str] = []
    for token in tokens:
        if token == ")" and out and out[-1] == "(":
            out.pop()
        else:
            out.append(token)
    return out


def _left_side(tokens: list[str]) -> list[str]:
    """The tokens just before an '=', back to the previous '='."""
    start = len(tokens)
    while start > 0 and tokens[start - 1] != "=":
        start -= 1
    return tokens[start:]


def _evaluate(tokens: list[str]) -> float | None:
    source = " ".join(tokens).replace("%", "/100")
    try:
        return _fold(ast.parse(source, mode="eval").body)
    except (SyntaxError, ZeroDivisionError, ValueError, TypeError, RecursionError, OverflowError):
        return None


def _fold(node) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_fold(node.left), _fold(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _fold(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    raise ValueError("not arithmetic")


def _is_number(token: str) -> bool:
    return token[:1].isdigit()


def _close(value: float, written: float) -> bool:
    """Equal, or equal once rounded as the result is written (whole numbers, one or two decimals)."""
    if _key(value) == _key(written):
        return True
    return any(_key(round(value, places)) == _key(written) for places in (0, 1, 2) if round(written, places) == written)


def _clean(text: str) -> str:
    """LaTeX spacing inside numbers (`93,\\!000`, `1\\,000`) and thin spaces removed."""
    return re.sub(r"(?<=\d)(?:,\\!|\\,|\{,\})(?=\d{3})", ",", text).replace("\\!", "")


def _value(answer: str | None) -> float | None:
    if answer is None:
        return None
    cleaned = re.sub(r"\\d?frac\{([^{}]*)\}\{([^{}]*)\}", r"\1/\2", str(answer))
    cleaned = re.sub(r"\\text\{[^}]*\}|\\[a-z]+|\\.|[$%\s,{}]", "", cleaned)
    cleaned = re.sub(r"[^\d./-]+$", "", cleaned)  # units after the number: 48kg, 17pounds
    try:
        return float(Fraction(cleaned))
    except (ValueError, ZeroDivisionError):
        return None


_PLACES = 6  # decimal places kept when values are compared


def _key(value: float) -> float:
    """Values compared after rounding away float noise (0.1 * 3 is 0.3)."""
    return round(value, _PLACES)


def _show(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"
