"""Final-answer extraction and equivalence (math-verify), shared by the verifier, generate and eval."""

from __future__ import annotations

import logging
import re
import threading
from fractions import Fraction
from functools import lru_cache

# Off the main thread math-verify runs without its signal-based timeout and says so on every call.
logging.getLogger("math_verify").setLevel(logging.ERROR)

_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_ANSWER_IS = re.compile(
    r"(?:final answer|answer)\s*(?:is|:|=)\s*[:\s]*\$?\s*([^\n$]+?)\s*\$?(?:\.\s|\.$|$|\n)", re.IGNORECASE
)


def last_boxed(text: str) -> str | None:
    r"""Content of the last \boxed{...} (or \fbox{...}), braces balanced; None when absent or unclosed."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for pos in range(brace, len(text)):
        if text[pos] == "{":
            depth += 1
        elif text[pos] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : pos].strip()
    return None


def extract_answer(text: str) -> str | None:
    r"""The final answer a piece of reasoning commits to: last \boxed{}, else "the answer is X", else last number."""
    if not text:
        return None
    boxed = last_boxed(text)
    if boxed:
        return boxed
    stated = _ANSWER_IS.findall(text)
    if stated:
        return stated[-1].strip().rstrip(".")
    numbers = _NUMBER.findall(text)
    return numbers[-1].replace(",", "") if numbers else None


def gsm8k_gold(answer_field: str) -> str:
    """GSM8K stores the gold after '####'."""
    return answer_field.split("####")[-1].strip().replace(",", "")


@lru_cache(maxsize=65536)
def _parsed(answer: str):
    from math_verify import parse

    in_main = threading.current_thread() is threading.main_thread()
    # math-verify's timeouts use signals, which only work in the main thread.
    wrapped = answer if "$" in answer or "\\boxed" in answer else f"${answer}$"
    kwargs = {} if in_main else {"parsing_timeout": None}
    parsed = parse(wrapped, **kwargs)
    if not parsed:
        parsed = parse(answer, **kwargs)
    return tuple(parsed)


def equivalent(reference: str | None, candidate: str | None) -> bool:
    """Mathematical equivalence of two final answers (math-verify), falling back to normalised strings."""
    if reference is None or candidate is None:
        return False
    return _equivalent(str(reference), str(candidate))


# A trace's answer is compared with the same few numbers again and again (the prepare node, the pruner, the verifier
# on every attempt), and a comparison math-verify decides costs a millisecond or more: each pair is decided once.
@lru_cache(maxsize=16384)
def _equivalent(reference: str, candidate: str) -> bool:
    reference, candidate = _strip_currency(reference), _strip_currency(candidate)
    if not reference or not candidate:
        return False
    plain_ref, plain_cand = _normalise(reference), _normalise(candidate)
    if plain_ref == plain_cand:
        return True
    if _PLAIN_NUMBER.fullmatch(plain_ref) and _PLAIN_NUMBER.fullmatch(plain_cand):
        # Two plain numbers: exact rational comparison, no need for a sympy round trip.
        return Fraction(plain_ref) == Fraction(plain_cand)
    from math_verify import verify

    gold, target = _parsed(reference), _parsed(candidate)
    if not gold or not target:
        return False
    in_main = threading.current_thread() is threading.main_thread()
    kwargs = {} if in_main else {"timeout_seconds": None}
    try:
        return bool(verify(list(gold), list(target), **kwargs))
    except Exception:  # sympy can fail on exotic input: not equivalent, never a crash
        return False


# Units math-verify may drop when comparing ("10\\%" matches "10"): values written with them are left to it.
_UNITS = re.compile(r"%|\\circ|degree|\\text|\\mbox")
RELATIVE_GAP = 1e-3  # well above math-verify's rounding, so a pair it could call equal is never decided here


def clearly_different(reference: str, candidate: str) -> bool:
    """True when both answers are plain constants (no unknowns, no units) whose values differ by more than
    RELATIVE_GAP: certainly not equivalent, known without math-verify's symbolic comparison, which takes tens of
    milliseconds on answers that differ. False means "ask `equivalent`"."""
    values = []
    for answer in (reference, candidate):
        answer = _strip_currency(str(answer))
        if not answer or _UNITS.search(answer):
            return False
        try:
            parsed = _parsed(answer)
            if not parsed or not getattr(parsed[0], "is_number", False):
                return False
            value = complex(parsed[0].evalf(30))
        except Exception:  # anything sympy cannot evaluate: leave it to `equivalent`
            return False
        if value != value or abs(value) == float("inf"):
            return False
        values.append(value)
    first, second = values
    return abs(first - second) > RELATIVE_GAP * max(1.0, abs(first), abs(second))


def _strip_currency(answer: str) -> str:
    return answer.replace("\\$", "").replace("\\%", "%").replace("\\!", "").strip()


def _normalise(answer: str) -> str:
    answer = answer.strip().strip("$").strip()
    answer = re.sub(r"\\text\{([^}]*)\}", r"\1", answer)
    answer = answer.replace(",", "").replace(" ", "").rstrip(".")
    if re.fullmatch(r"-?\d+\.0+", answer):
        answer = answer.split(".")[0]
    return answer.lower()


def numbers_in(text: str) -> set[str]:
    """Numbers written in a text, normalised (no thousands separators, no trailing .0)."""
    found = set()
    for raw in _NUMBER.findall(text or ""):
        value = raw.replace(",", "")
        if "." in value and "/" not in value:
            value = value.rstrip("0").rstrip(".")
        found.add(value.lstrip("-") or "0")
    return found
