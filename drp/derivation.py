"""Does a piece of reasoning still carry the computation that yields its answer?

A deterministic check for the verifier. A number is *available* when it is given: written in the question, one of
a few conventions (`CONSTANTS`: 1, 2, percent's 100, units such as 60 minutes or 7 days, usable as operands only),
or, when the text was pruned from an original, a number the original itself uses without ever computing it (31
days in May). A number becomes available when the text writes a *computation* that yields it from available
operands, transitively and in reading order (a number computed only later does not support its use above).
Computations are read from what the text writes, in symbols or in words:
`45 - 7 = 38`, `50 cookies divided by 5 jars equals 10`, `\\frac{1}{5} \\times 100 = 20`, `twice 14 is 28`,
`half of 28 is 14`, `3 times as many as 5 is 15`, `2 pieces of 20 / 8 ounces is 5 ounces`, `$1 less than the $5
magazine is $4`, `20% of 50 is 10`, `subtract 2 from 30 to get 28`; each is checked by evaluating its left side.
Steps told in words are read too, where a sentence names the operation and writes the result after a result word:
`She gives away 24, leaving her with 6` (one operand in the sentence, the other among the numbers of the few
sentences before: 30), `Multiplying this by 31 days gives 93,000`, `This left 84 remaining` (an operation named:
both operands from the sentences before), `we add 42 to the initial 23. This brings the total to 65` (a result
written just after its computation), `$0.50 is 50 cents` (a unit conversion).
The answer is derived only when a written computation *yields* it (its result) from available operands. A number
never counts as derived because it is written elsewhere: the answer written only as an operand ("the pen costs $1
less", answer 1), or only stated ("The answer is 15", "the result is $168"), derives nothing. A restatement of the
answer (a sentence that says "answer" or boxes it) is never read as a step of its own, unless the sentence right
before names the operation it concludes ("I add the red and black pens. This gives the final answer of 75"): it is
harmless when a computation of the answer is written above it, and never enough on its own. An operand whose own
computation was deleted (28 in `28 / 2 = 14`, after `30 - 2 = 28` was pruned away) is not available, so neither is
anything computed from it, and `Derivation.explain` names that missing link.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache

# Conventions a solution may use as operands without writing where they come from: 1 and 2 (one each, halving,
# doubling), 100 (percent), and units (days in a week, months, hours, weeks in a year, minutes, grams, seconds).
# Never results: a conventional number the answer happens to equal is not a derivation of it.
CONSTANTS = frozenset(float(n) for n in (1, 2, 100, 7, 12, 24, 52, 60, 365, 1000, 3600))
_WINDOW = 4  # how many sentences before an open result may hold its other operand

_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "thousand": 1000,
    "dozen": 12,
    "twice": 2,
    "double": 2,
    "doubled": 2,
    "triple": 3,
    "tripled": 3,
    "half": 2,
    "halves": 2,
    "quarter": 4,
    "quarters": 4,
    "third": 3,
    "thirds": 3,
    "fifth": 5,
    "fifths": 5,
    "sixth": 6,
    "eighth": 8,
    "tenth": 10,
}
# Singular fraction words are the fraction itself ("a third" is 1/3); plurals only name the denominator
# ("two-thirds" is not 1/3). Either way the denominator is written.
_FRACTION_WORDS = ("half", "quarter", "third", "fifth", "sixth", "eighth", "tenth")
_DENOMINATOR_WORDS = ("halves", "quarters", "thirds", "fifths")


def _led(firsts: str, pattern: str) -> str:
    """`pattern`, tried only where one of the characters it can begin with stands: a one-character test that spares
    the whole pattern at every other position (twice as fast on sentences; the same matches)."""
    return f"(?=[{firsts}])(?:{pattern})"


_MENTION = re.compile(
    _led(
        r"\d" + "".join(sorted({word[0] for word in _WORDS})),
        r"(?P<fraction>(?<![\w./])\d+/\d+(?![\w/]))"
        r"|(?P<digits>(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,]*\d)|(?<![\w.])\d+(?:\.\d+)?)"
        r"|\b(?P<word>" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")\b",
    ),
    re.I,
)
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
    unsupported: list[str] = field(default_factory=list)  # operands the text uses but never computes nor was given
    facts: frozenset = frozenset()  # their values
    written: dict[float, list[int]] = field(default_factory=dict)  # value → sentences writing it
    attempts: list[tuple[int, tuple]] = field(default_factory=list)  # every computation written, derived or not
    source: dict[float, tuple] = field(default_factory=dict)  # the original's own derivations, value → (how, index)

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
            todo.extend(operand for operand in sorted(how[2]) if operand not in self.given)
        return found

    def chain(self) -> dict[int, tuple[str, list[str]]]:
        """The sentences (by index) the answer's computation needs → (what the sentence contributes, the numbers
        it writes that the computation uses): those that compute the answer or a number it depends on."""
        needed: dict[int, tuple[str, list[str]]] = {}
        for index, how, value in self.computations():
            for where in (index, *how[4:]):  # a result written in the sentence after its computation: both
                note = f"computes {_explain(how)}" if where == index else f"writes the operands of {_explain(how)}"
                _, values = needed.setdefault(where, (note, []))
                for number in (value, *sorted(how[2])):
                    if where in self.written.get(number, ()) and _show(number) not in values:
                        values.append(_show(number))
        return dict(sorted(needed.items()))

    def lost_in(self, text: str) -> list[str]:
        """Numbers of this (original) computation of the answer that `text` no longer writes, with their use."""
        written = {_key(v) for _, values in _mentions(_clean(text)) for v in values}
        lost: dict[float, str] = {}
        for _, how, value in self.computations():
            if value not in written:
                lost.setdefault(value, f"{_show(value)} (computed by {_explain(how)})")
            for operand in how[2]:
                if operand not in written and operand in self.written:
                    lost.setdefault(operand, f"{_show(operand)} (used in {_explain(how)})")
        return list(lost.values())

    def missing_links(self) -> list[tuple[str, str]]:
        """When the answer is not derived: (number, the computation using it) for each number on the way to the
        answer that the text uses but never computes from available numbers, followed back from the last
        computation written that yields the answer. Empty when no written computation yields it at all."""
        if self.answer_derived:
            return []
        available = set(self.given) | set(self.origins)
        links: dict[float, str] = {}

        def follow(how: tuple, seen: frozenset) -> None:
            for operand in sorted(how[2]):
                if operand in available:
                    continue
                makers = [h for _, h in self.attempts if h[3] == operand]
                if makers and operand not in seen and len(seen) < 12:  # (a circle: 28 / 2 = 14, 2 × 14 = 28)
                    follow(makers[-1], seen | {operand})
                else:
                    links.setdefault(operand, _explain(how))

        finals = [how for _, how in self.attempts if how[3] == self.target]
        if finals:
            follow(finals[-1], frozenset({self.target}))
        return [(_show(value), used_in) for value, used_in in links.items()]

    def explain(self, answer: str) -> str:
        if self.answer_derived:
            return f"{answer} is derived: {_explain(self.origins[self.target][0])}"
        if not self.answer_mentioned:
            return f"the reasoning never writes the answer {answer}"
        links = self.missing_links()
        if links:
            return "; ".join(
                f"{value} is used (in {used_in}) but never computed: keep the step that computes {value}"
                f"{self._in_original(value)}"
                for value, used_in in links[:4]
            )
        return (
            f"the reasoning states {answer} without the computation that yields it (no computation written in it "
            f"has {answer} as its result; stating a number, or using it as an operand, does not compute it): keep "
            f"the step that computes {answer}{self._in_original(_show(self.target)) if self.target is not None else ''}"
        )

    def _in_original(self, shown: str) -> str:
        """Where the original computes a number: " (the original's 30 - 2 = 28)", or nothing."""
        found = next((how for value, (how, _) in self.source.items() if _show(value) == shown), None)
        return f" (the original's {_explain(found)})" if found else ""


def check(text: str, answer: str, question: str = "", original: str | None = None) -> Derivation:
    """Whether `text` derives `answer` from the question's numbers through computations it writes down.
    With `original` (the text it was pruned from), numbers the original itself uses without computing them
    (31 days in May, a minute and a half as 1.5) count as given: pruning must not drop computations, and
    these never had one."""
    target = _value(answer)
    target = None if target is None else _key(target)
    given = frozenset(_key(v) for _, vs in _mentions(question) for v in vs) | CONSTANTS
    if original is not None:
        given = given | _facts(original, question)
    sentences, written, attempts = _reading(text or "")
    origins = _derive(attempts, given)
    results = {how[3] for _, how in attempts}
    available = given | set(origins)
    roots = sorted(
        {
            op
            for _, how in attempts
            if how[3] not in origins
            for op in how[2]
            if op not in available and op not in results
        }
    )
    mentioned = target is not None and target in written
    source = own_derivation(original, answer, question).origins if original is not None and original != text else {}
    return Derivation(
        target is not None and target in origins,
        mentioned,
        target,
        list(sentences),
        given,
        origins,
        [_show(value) for value in roots],
        frozenset(roots),
        {value: list(where) for value, where in written.items()},
        list(attempts),
        source,
    )


# An original is read twice per trace (for the numbers it uses without computing them, then for its derivation),
# and what a text writes and computes does not depend on the question or the answer: read once.
@lru_cache(maxsize=64)
def _reading(text: str) -> tuple[tuple[str, ...], dict[float, tuple[int, ...]], tuple[tuple[int, tuple], ...]]:
    """A text's sentences, the sentences writing each number, and every computation written (sentence, how).
    Shared between callers: `check` hands out copies."""
    sentences = _SENTENCE.split(_clean(text))
    written: dict[float, list[int]] = {}
    attempts: list[tuple[int, tuple]] = []
    recent: list[list[float]] = []  # the numbers each sentence writes
    waiting: list[tuple[int, tuple]] = []  # computations written without their result: (sentence, pending)
    named_before = False
    for index, sentence in enumerate(sentences):
        numbers = [_key(value) for _, values, parts in _mention_parts(sentence) for value in values + parts]
        for value in numbers:
            written.setdefault(value, []).append(index)
        equations, open_results, pending, named, restating = _computations(sentence)
        attempts.extend((index, how) for how in equations)
        for where, (shown, operands, value) in waiting:  # a result written a few sentences after its computation
            if value in numbers:
                attempts.append((index, ("equation", f"{shown} = {_show(value)}", operands, value, where)))
        waiting = [(where, found) for where, found in waiting if found[2] not in numbers and index - where < _WINDOW]
        earlier = [value for previous in recent[-_WINDOW:] for value in previous]
        # both operands from the sentences before only where this one or the one before names the operation; the
        # answer restated ("This gives the final answer of 75") only right after an operation named
        for result, before, cued in open_results:
            if (cued or named_before) and (not restating or named_before):
                attempts.extend(
                    (index, how)
                    for how in _steps(result, before, earlier, named or named_before, recent[-1] if recent else [])
                )
        recent.append(numbers)
        if pending is not None:
            waiting.append((index, pending))
        named_before = named or pending is not None
    return tuple(sentences), {value: tuple(where) for value, where in written.items()}, tuple(attempts)


def _steps(
    result: float, operands: tuple[float, ...], earlier: list[float], named: bool, last: list[float]
) -> list[tuple]:
    """The computations an open result may stand for: one operation on an operand its sentence writes and another
    from that sentence or the few before ("Multiplying this by 31 days gives 93,000" after "3,000 posts a day");
    where an operation is named, on two from the sentences before ("Adding them together gives 20,000"); or the
    sum of the three or more numbers the sentence writes ("Adding $200, $60, and $48 gives $308"), or, where it
    names an operation, the sentence before writes."""
    found = []
    for terms in (operands, last if named else ()):
        if len(terms) > 2 and _key(sum(terms)) == result:
            found.append(("step", " + ".join(map(_show, terms)) + f" = {_show(result)}", frozenset(terms), result))
    seen = [*operands, *earlier]
    firsts = [*operands, *(sorted(set(earlier)) if named else ())]
    seconds = list(dict.fromkeys((*operands, *sorted(set(earlier)))))
    for a in dict.fromkeys(firsts):
        for b in seconds:
            if a == b and seen.count(a) < 2 or result in (a, b):  # a + a, a / a: coincidences unless written
                continue  # twice ("4 ... 4"); a × 1 computes nothing
            for sign, value in (
                ("+", a + b),
                ("-", a - b),
                ("-", b - a),
                ("×", a * b),
                ("/", a / b if b else None),
                ("/", b / a if a else None),
            ):
                # rounded and compared only when within a hair of the result: most pairs are far off (not `>`, so
                # a NaN is compared too)
                if value is not None and not abs(value - result) > _NEAR and _key(value) == result:
                    x, y = (b, a) if (sign in "-/" and value in (b - a, b / a if a else None)) else (a, b)
                    found.append(("step", f"{_show(x)} {sign} {_show(y)} = {_show(result)}", frozenset((a, b)), result))
                    break
    return found


def _derive(attempts: list[tuple[int, tuple]], given: frozenset) -> dict[float, tuple]:
    """The values the written computations yield from the given ones, transitively, in reading order: a
    computation may use what is given and what the text computed before it or in its own sentence, never a
    number it only computes later. Value → (the first computation that yields it; its sentence)."""
    origins: dict[float, tuple] = {}
    available = set(given)
    by_sentence: dict[int, list[tuple]] = {}
    for index, how in attempts:
        by_sentence.setdefault(index, []).append(how)
    for index in sorted(by_sentence):
        changed = True
        while changed:  # "28 / 2 = 14, from 30 - 2 = 28": within a sentence, any order
            changed = False
            for how in by_sentence[index]:
                if how[3] not in origins and how[2] <= available:
                    origins[how[3]] = (how, index)
                    available.add(how[3])
                    changed = True
    return origins


@lru_cache(maxsize=256)
def _facts(original: str, question: str) -> frozenset:
    """The numbers a text uses without computing them (cached: every attempt of a trace asks again)."""
    return check(original, "", question).facts


@lru_cache(maxsize=256)
def own_derivation(text: str, answer: str, question: str = "") -> Derivation:
    """`check(text, answer, question, text)`: an original's derivation, which the pruner and the verifier both
    read on every attempt of a trace, so it is worked out once. Shared between callers: read only."""
    return check(text, answer, question, text)


def needed_passages(
    passages: list[str], text: str, answer: str, question: str = ""
) -> dict[int, tuple[str, list[str]]]:
    """Which passages of `text` (1-based, e.g. a trace's steps, in order) hold the computation of the answer or of
    a number it depends on → (what the passage contributes, the numbers it writes that the computation uses).
    A sentence is matched to the passages it overlaps where it stands in the text, so a short passage ("W = 4")
    is not taken for a later sentence that happens to contain it. Empty when `text` does not derive its answer."""
    derivation = own_derivation(text, answer, question)
    chain = derivation.chain()
    if not chain:
        return {}
    squashed = [" ".join(_clean(p).split()) for p in passages]
    whole = " ".join(_clean(text).split())
    passage_spans = _spans(squashed, whole)
    sentence_spans = _spans([" ".join(s.split()) for s in derivation.sentences], whole)
    found: dict[int, tuple[str, list[str]]] = {}
    for index, (contribution, values) in chain.items():
        sentence = " ".join(derivation.sentences[index].split())
        start, end = sentence_spans[index]
        for number, passage in enumerate(squashed, start=1):
            p_start, p_end = passage_spans[number - 1]
            if start >= 0 and p_start >= 0:
                overlaps = p_start < max(end, start + 1) and start < max(p_end, p_start + 1)
            else:  # not found where it stands (the text is not the passages joined): by content
                overlaps = bool(sentence and passage and (sentence in passage or passage in sentence))
            if overlaps:
                _, kept = found.setdefault(number, (contribution, []))
                kept.extend(v for v in values if v not in kept)
    return dict(sorted(found.items()))


def _spans(pieces: list[str], whole: str) -> list[tuple[int, int]]:
    """Where each piece stands in `whole`, looked for in order after the previous one: (start, end), or (-1, -1)."""
    spans, cursor = [], 0
    for piece in pieces:
        start = whole.find(piece, cursor) if piece else -1
        spans.append((start, start + len(piece)) if start >= 0 else (-1, -1))
        cursor = start + len(piece) if start >= 0 else cursor
    return spans


def writes_number(text: str) -> bool:
    """Whether a text writes any number, in digits or in words ("twice", "a third")."""
    return _MENTION.search(text) is not None


def states_value(text: str, value: str) -> bool:
    """Whether a text writes this number (in any of the forms a mention can take)."""
    target = _value(value)
    return target is not None and any(_key(target) in map(_key, values) for _, values in _mentions(_clean(text)))


def _explain(how: tuple) -> str:
    return how[1]


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


# How computations written in words and LaTeX read as arithmetic, in this order (a number is `_N`; its `$` and
# the words between an operation and its operands are dropped, as they are for symbols).
_N = r"\$?(\d+(?:\.\d+)?)"
# words between an operation's cue and its operand ("the $5 magazine"), never across a clause or a result
_GAP = (
    r"(?:(?!\b(?:is|are|was|were|equals?|gives?|giving|results?|resulting|makes|totals|totaling|so|which|that)\b)"
    r"[^\d=.,;!?]){0,40}?"
)
_CARDINALS = {
    word: value
    for word, value in _WORDS.items()
    if word not in _FRACTION_WORDS + _DENOMINATOR_WORDS
    and word not in ("twice", "double", "doubled", "triple", "tripled")
}
_DENOMINATORS = {
    "half": 2,
    "halves": 2,
    "third": 3,
    "thirds": 3,
    "quarter": 4,
    "quarters": 4,
    "fourth": 4,
    "fourths": 4,
    "fifth": 5,
    "fifths": 5,
    "sixth": 6,
    "sixths": 6,
    "eighth": 8,
    "eighths": 8,
    "tenth": 10,
    "tenths": 10,
}
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
_UNITS = "one|two|three|four|five|six|seven|eight|nine"


def _word_number(match: re.Match) -> str:
    words = re.split(r"[\s-]+", match.group().lower())
    return str(sum(_CARDINALS[w] for w in words))


def _fraction_word(match: re.Match) -> str:
    count, word = match.group(1), match.group(2).lower()
    return f" ({count or 1} / {_DENOMINATORS[word]}) "


_READING = [
    (re.compile(r"(?<=\d),(?=\d{3}\b)"), "", (",",)),  # 1,000
    (re.compile(r"\\(?:left|right|,|!|;|quad)|\\(?:text|mathrm|textbf)\s*\{[^{}]*\}"), " ", ("\\",)),
    (re.compile(r"\\boxed\s*\{([^{}]*)\}"), r" \1 ", ("\\boxed",)),
    (re.compile(r"\\[()\[\]]|\*\*"), " ", ("\\", "**")),  # inline math delimiters, bold
    (re.compile(r"\\d?frac\s*\{([^{}]+)\}\s*\{([^{}]+)\}"), r"((\1)/(\2))", ("frac",)),
    (re.compile(r"\([^()\d]*\)"), " ", ("(",)),  # "100 (two years ago) + 50": words in brackets are a comment
    (re.compile(r"(?<=[a-zA-Z\d])-(?=[a-zA-Z])"), " ", ("-",)),  # multiple-choice, 1000-piece
    (re.compile(r"\\(?:times|cdot)|×|·|∗"), "*", ("\\", "×", "·", "∗")),
    (re.compile(r"\\div|÷"), "/", ("\\div", "÷")),
    (re.compile(r"\\approx|\\Rightarrow|\\implies|→|⇒"), " = ", ("\\", "→", "⇒")),
    (re.compile(r"/(?!\s*[\d(.$\\])"), " ", ("/",)),  # a unit's slash: 11 sandwiches/day
    (re.compile(r"−|–"), "-", ("−", "–")),
    # number words as digits ("twenty-five" is 25)
    (
        re.compile(
            _led(
                "".join(sorted({word[0] for word in _CARDINALS})),
                rf"\b(?:(?:{_TENS})[\s-](?:{_UNITS})|" + "|".join(sorted(_CARDINALS, key=len, reverse=True)) + r")\b",
            ),
            re.I,
        ),
        _word_number,
    ),
    # fractions in words: "two-thirds" is (2 / 3), "a third" and "half" (1 / 3), (1 / 2)
    (
        re.compile(
            r"\b(?:(\d+)[\s-]+|an?\s+|one[\s-]+)?("
            + "|".join(sorted(_DENOMINATORS, key=len, reverse=True))
            + r")\b(?=(?:\s+[a-z']+){0,4}\s+\$?\(?\d)",
            re.I,
        ),
        _fraction_word,
        ("half", "halves", "third", "quarter", "fourth", "fifth", "sixth", "eighth", "tenth"),
    ),
    (re.compile(r"\b(?:twice|double)\b", re.I), " 2 * ", ("twice", "double")),
    (re.compile(r"\btriple\b", re.I), " 3 * ", ("triple",)),
    (re.compile(r"\bdoubled\b", re.I), " * 2 ", ("doubled",)),
    (re.compile(r"\btripled\b", re.I), " * 3 ", ("tripled",)),
    (re.compile(r"\bhalved\b", re.I), " / 2 ", ("halved",)),
    # operations named before their operands; what follows is their result ("..., I find that he has $4")
    (
        re.compile(rf"\bsubtract(?:ing|ed)?\s+{_GAP}{_N}{_GAP}\bfrom\s+{_GAP}{_N}", re.I),
        r" (\2 - \1) = ",
        ("subtract",),
    ),
    (
        re.compile(rf"\b(?:multiply(?:ing)?|multiplied)\s+{_GAP}{_N}{_GAP}\bby\s+{_GAP}{_N}", re.I),
        r" (\1 * \2) = ",
        ("multipl",),
    ),
    (re.compile(rf"\b(?:divid(?:e|ing|ed))\s+{_GAP}{_N}{_GAP}\bby\s+{_GAP}{_N}", re.I), r" (\1 / \2) = ", ("divid",)),
    (
        re.compile(rf"\b(?:add(?:ing|ed)?|sum of|total of)\s+{_GAP}{_N}{_GAP}\b(?:and|to|with)\s+{_GAP}{_N}", re.I),
        r" (\1 + \2) = ",
        ("add", "sum of", "total of"),
    ),
    (re.compile(rf"\bproduct of\s+{_N}{_GAP}\band\s+{_GAP}{_N}", re.I), r" (\1 * \2) = ", ("product",)),
    (
        re.compile(rf"\bdifference (?:between|of)\s+{_N}{_GAP}\band\s+{_GAP}{_N}", re.I),
        r" (\1 - \2) = ",
        ("difference",),
    ),
    # "$1 less than the $5 magazine" is 5 - 1; "3 more than 10" is 10 + 3
    (
        re.compile(
            rf"{_N}{_GAP}\b(?:less|fewer|cheaper|shorter|younger|lighter) than\s+{_GAP}{_N}"
            r"(?!\s*(?:times|\*|×|x\b|[a-z]+ times))",
            re.I,
        ),
        r" (\2 - \1) ",
        (" than",),
    ),
    (
        re.compile(
            rf"{_N}{_GAP}\b(?:more|greater|older|taller|heavier|longer|larger|bigger) than\s+{_GAP}{_N}"
            r"(?!\s*(?:times|\*|×|x\b|[a-z]+ times))",
            re.I,
        ),
        r" (\2 + \1) ",
        (" than",),
    ),
    (re.compile(r"\\?%|\bpercent\b", re.I), " % ", ("%", "percent")),
    # results written as changes and remainders: "increasing her total to 21", "has $50 left", "the remaining 4"
    (
        re.compile(
            r"\b(?:increas|reduc|decreas|bring|brought|rais|drop|grow|grew|go(?:es)? up|go(?:es)? down|went)\w*"
            r"\b[^\d=.;!?]{0,40}?\bto(?=\s+\$?\d)",
            re.I,
        ),
        " = ",
        ("increas", "reduc", "decreas", "bring", "brought", "rais", "drop", "grow", "grew", " up", " down", "went"),
    ),
    (
        re.compile(
            r"\b(?:has|have|had|with|are|is)\s+\$?(\d+(?:\.\d+)?)\s+(?:[a-z]+\s+){0,2}?(?:left|remaining)\b", re.I
        ),
        r" = \1 ",
        ("left", "remaining"),
    ),
    (
        re.compile(r"\b(?:the\s+)?(?:remaining|rest of|other)\s+(?=\$?\d)", re.I),
        " = ",
        ("remaining", "rest of", "other"),
    ),
    # "2 pieces of 20 / 8 ounces", "20% of 50", "(1 / 3) of 30": of is a product
    (
        re.compile(r"(?<=[\d%)])\s*(?:(?!out\b)[a-z]+\s+){0,2}?of\s+(?:[a-z']+\s+){0,2}?(?=\$?\(?\d)", re.I),
        " * ",
        ("of",),
    ),
    (
        re.compile(r"(?<=[%)])\s*(?:(?:as|many|much|of|the|each)\s+){0,4}(?=\$?\(?\d)", re.I),
        " * ",
        ("%", ")"),
    ),  # "(1 / 2) as many as 28"
    (re.compile(r"(?<=\d)\s*[xX]\s*(?=\$?\(?\d)"), " * ", ("x",)),
    (re.compile(r"\b(?:multiplied by|times)\b", re.I), " * ", ("multiplied", "times")),
    (
        re.compile(r"\b(?:divided (?:by|into)|split (?:among|between|into))\b|(?<=\d)\s*over(?=\s*\$?\d)", re.I),
        " / ",
        ("divided", "split", "over"),
    ),
    (re.compile(r"\bplus\b", re.I), " + ", ("plus",)),
    (re.compile(r"\bminus\b", re.I), " - ", ("minus",)),
    (
        re.compile(
            _led(
                "acefgilmrstwy≈",
                r"\b(?:equals?|is equal to|gives(?: us)?|makes|results in|comes to|totals|is|are|was|were|"
                r"(?:to|we|I|you) get|leaving|leaves|means|costs?|so(?=\s+\$?\d)|left(?: with)?|totall?ing|"
                r"(?:would|will|should) be|resulting in|equaling|adds? up to|leading to|for a total of)\b|≈",
            ),
            re.I,
        ),
        " = ",
    ),
]
# An equation as read: operands joined by operators, then `=` (everything else was words).
# A sentence that names an operation, for a result whose operand it takes from the sentences before; never a
# restatement of the answer.
_OPERATION_CUE = re.compile(
    r"[-+*/×÷]|\\(?:times|cdot|div|frac)|\b(?:less|more|fewer|times|twice|double|triple|half|third|quarter|each|per|"
    r"every|total|sum|altogether|combined|together|left|remain\w*|leav\w+|add\w*|plus|minus|subtract\w*|multipl\w+|"
    r"divid\w+|split|shar\w+|difference|product|increas\w+|decreas\w+|discount\w*|profit|percent|of)\b|%",
    re.I,
)
# ... or, when it writes none of the operands, that names the operation itself ("performing the multiplication
# gives 3,360", "this left 84 remaining"): then both operands come from the sentences just before.
_OPERATION_NAMED = re.compile(
    r"\b(?:multiplication|addition|subtraction|division|multiplying|dividing|adding|"
    r"subtracting|sum|product|difference|combin\w+|together|add|adds|added|subtract|multiply|divide|remaining|rest|"
    r"left|total|altogether)\b",
    re.I,
)
_RESTATEMENT = re.compile(r"\banswer\b|\\boxed", re.I)
_EXPR_TOKEN = re.compile(r"\d+(?:\.\d+)?|[-+*/()%=]")


# A rule runs only where one of its words is (most sentences hold few of them), looked for as plain substrings of
# the sentence in lower case: a tenth of the cost of a case-blind pattern per rule.
_RULES = [
    (pattern, replacement, frozenset(word.lower() for word in needs[0]) if needs else None)
    for pattern, replacement, *needs in _READING
]
_WORDS_NEEDED = tuple(sorted({word for _, _, needs in _RULES if needs for word in needs}))
# The letters a case-blind pattern takes for an ASCII letter that lower() does not turn into it (the long s, the
# dotted and dotless i): mapped first, so the substring test finds every word the rule's pattern would.
_FOLD = str.maketrans({"ſ": "s", "İ": "i", "ı": "i"})


def _present(text: str) -> set[str]:
    """The rules' words a text holds."""
    folded = text.lower() if text.isascii() else text.translate(_FOLD).lower()
    return {word for word in _WORDS_NEEDED if word in folded}


def _read(sentence: str) -> str:
    present = _present(sentence)
    for pattern, replacement, needs in _RULES:
        if needs is None or not needs.isdisjoint(present):
            changed = pattern.sub(replacement, sentence)
            if changed != sentence:
                sentence, present = changed, _present(changed)
    return sentence


@lru_cache(maxsize=4096)
def _computations(sentence: str) -> tuple:
    """What a sentence computes: (its equations, its open results, a computation it leaves without a result, whether
    it names an operation, whether it restates the answer). An equation is ("equation", as read, operands, result)
    for an `=` whose left side (back to the previous `=`, or a shorter tail of it: words were dropped, so earlier
    numbers may not belong to it) evaluates to the number right after it. An open result is a number after an `=`
    that no left side yields ("Multiplying this by 31 days gives 93,000"): (result, the numbers the sentence writes
    before it, whether the sentence cues an operation), for `check` to complete with operands of the sentences
    before. Cached: sentences are read again on every attempt."""
    if not _mention_parts(sentence):
        return (), (), None, bool(_OPERATION_NAMED.search(sentence)), False
    tokens = _drop_empty_brackets(_EXPR_TOKEN.findall(_read(sentence)))
    found: list[tuple] = []
    open_results: list[tuple[float, tuple[float, ...], bool]] = []
    named = bool(_OPERATION_NAMED.search(sentence))
    fractions = [_key(v) for raw, values, _ in _mention_parts(sentence) if "/" in raw for v in values]  # 3/4 as 0.75
    for index, token in enumerate(tokens):
        if token != "=" or index + 1 >= len(tokens) or not _is_number(tokens[index + 1]):
            continue
        result = float(tokens[index + 1])
        percent = index + 2 < len(tokens) and tokens[index + 2] == "%"
        left = _left_side(tokens[:index])
        while len(left) > 1:
            if any(_close(value, result) or (percent and _close(value * 100, result)) for value in _values(left)):
                operands = frozenset(_key(float(t)) for t in left if _is_number(t))
                found.append(("equation", f"{' '.join(left)} = {tokens[index + 1]}", operands, _key(result)))
                break
            left = left[1:]
        else:
            if index + 2 < len(tokens) and tokens[index + 2] in ("+", "-", "*", "/"):
                continue  # "is 2 boxes multiplied by $2.00": the first operand of what follows, not a result
            if len(left) == 1 and _is_number(left[0]) and (step := _conversion(float(left[0]), result)):
                found.append(step)
                continue
            before = tuple(_key(float(t)) for t in tokens[:index] if _is_number(t) and _key(float(t)) != _key(result))
            before += tuple(value for value in fractions if value != _key(result))
            open_results.append((_key(result), before, bool(named or before and _OPERATION_CUE.search(sentence))))
    return tuple(found), tuple(open_results), _pending(tokens), named, bool(_RESTATEMENT.search(sentence))


def _pending(tokens: list[str]) -> tuple | None:
    """A computation written without its result, last in a sentence ("so we add 42 to the initial 23."), whose
    result the next sentence writes ("This brings the total to 65."): (as read, operands, value)."""
    tail = _left_side(tokens[:-1] if tokens[-1:] == ["="] else tokens)
    while len(tail) > 2:
        if sum(map(_is_number, tail)) > 1 and any(t in "+-*/" for t in tail):
            values = _values(tail)
            if values:
                value = next(iter(values))
                return " ".join(tail), frozenset(_key(float(t)) for t in tail if _is_number(t)), _key(value)
        tail = tail[1:]
    return None


_FACTORS = sorted(CONSTANTS - {1.0, 2.0})  # a unit conversion's factors


def _conversion(value: float, result: float) -> tuple | None:
    """`$0.50 is 50 cents`, `2 weeks is 14 days`: a number restated in another unit, by a conventional factor."""
    if value == result:
        return None
    target = _key(result)
    for factor in _FACTORS:
        for sign, converted in (("×", value * factor), ("/", value / factor)):
            if not abs(converted - target) > _NEAR and _key(converted) == target:  # (rounded only when near)
                return (
                    "equation",
                    f"{_show(value)} {sign} {_show(factor)} = {_show(result)}",
                    frozenset((_key(value), factor)),
                    _key(result),
                )
    return None


def _values(left: list[str]) -> set[float]:
    """What a left side evaluates to: with each percent as a hundredth, and as written (0.1 × 100% = 10%)."""
    values = {_evaluate(left)}
    if "%" in left:
        values.add(_evaluate([t for t in left if t != "%"]))
    return {value for value in values if value is not None}


def _drop_empty_brackets(tokens: list[str]) -> list[str]:
    """`$1.00 (pennies) + $2.00 (nickels)`, `8 points (multiple-choice)`: the words are gone, their brackets (and
    what is left between them without a number) must go too; so must an `=` repeated where words stood between."""
    out: list[str] = []
    for token in tokens:
        if token == ")" and "(" in out:
            start = len(out) - 1 - out[::-1].index("(")
            if not any(_is_number(t) for t in out[start:]):
                del out[start:]
                continue
        if token == "=" and out and out[-1] == "=":
            continue
        out.append(token)
    return out


def _left_side(tokens: list[str]) -> list[str]:
    """The tokens just before an '=', back to the previous '='."""
    start = len(tokens)
    while start > 0 and tokens[start - 1] != "=":
        start -= 1
    return tokens[start:]


def _evaluate(tokens: list[str]) -> float | None:
    source = " ".join(tokens).replace("%", "/100")  # (a percent is also tried as written: 0.1 × 100% = 10%)
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
_NEAR = 1e-5  # further apart than this, two values differ once rounded to _PLACES


def _key(value: float) -> float:
    """Values compared after rounding away float noise (0.1 * 3 is 0.3)."""
    return round(value, _PLACES)


def _show(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"
