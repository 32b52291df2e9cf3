"""Outcomes: the status a trace is in, the kinds of reason it ends with, and which outcomes count for what.

A reason is stored as one string, its kind first and alone before the colon, then its particulars
("wrong_original: the trace answers 4, gold is 3"), or the kind alone ("fallback_rules"). Reports, stats and
benchmarks group and filter by the kind (`reason_kind`); the stored strings are read by existing runs, so a
kind's spelling never changes.
"""

from __future__ import annotations

# Statuses of a trace (the `status` column). A run ends each trace in one of the terminal ones.
PENDING = "pending"
ACCEPTED = "accepted"
REJECTED = "rejected"
FAILED = "failed"
TERMINAL = (ACCEPTED, REJECTED, FAILED)
STATUSES = (*TERMINAL, PENDING)  # as listed to a user
ENDED_BADLY = (REJECTED, FAILED)  # the ones whose reason says what went wrong

# Reason kinds. Accepted:
VERIFIED = "verified"  # the gating checks passed
RECORDED = "recorded"  # a policy that gates nothing: checks on record, not passed
FALLBACK_RULES = "fallback_rules"  # the teacher's attempts failed; the rule-based pruning passed

# Rejected: the original trace is no trace to prune (checked before any teacher call, agents/prepare.py)
INCOMPLETE_TRACE = "incomplete_trace"
EMPTY_THINKING = "empty_thinking"
NO_FINAL_ANSWER = "no_final_answer"
WRONG_ORIGINAL = "wrong_original"
TOO_LONG = "too_long"
# Rejected: the pruning
UNFAITHFUL_ECHO = "unfaithful_echo"
NOTHING_TO_PRUNE = "nothing_to_prune"
VERIFICATION_FAILED = "verification_failed"

# Failed: an agent's replies could not be used, or the run could not go on with this trace
SEGMENTER_UNUSABLE = "segmenter_unusable"
CLASSIFIER_UNUSABLE = "classifier_unusable"
PRUNER_UNUSABLE = "pruner_unusable"
TEACHER_ERROR = "teacher_error"  # also the error of a teacher call (the calls table)
POLICY_ERROR = "policy_error"
INTERNAL_ERROR = "internal_error"

# Failed when ingested: an input line that is no record (drp/input_traces.py)
INVALID_UTF8 = "invalid_utf8"
INVALID_JSON = "invalid_json"
INVALID_ID = "invalid_id"
INVALID_RECORD = "invalid_record"
INVALID_TEXT = "invalid_text"
MISSING_FIELD = "missing_field"
DUPLICATE_ID = "duplicate_id"

# Eligibility: a trace rejected for one of these never had a correct, complete original to prune, so it counts
# for no policy (benchmarks measure acceptance over the others).
ORIGINAL_UNUSABLE = frozenset({INCOMPLETE_TRACE, WRONG_ORIGINAL, NO_FINAL_ANSWER, EMPTY_THINKING})
# A trace that failed for one of these is retried when its run resumes (the endpoint's fault, not the trace's).
RETRIED_ON_RESUME = TEACHER_ERROR


_ALONE = object()


def reason(kind: str, particulars: object = _ALONE) -> str:
    """The stored reason: "<kind>: <particulars>", or the kind alone when no particulars are given."""
    return kind if particulars is _ALONE else f"{kind}: {particulars}"


def prefix(kind: str) -> str:
    """How every reason of `kind` with particulars starts (for matching stored reasons in SQL)."""
    return f"{kind}:"


def reason_kind(text: str | None) -> str | None:
    """The reason without its particulars ("wrong_original: the trace answers 4, gold is 3" →
    "wrong_original"), so reasons can be counted and filtered by kind."""
    if not text:
        return None
    return text.split(":", 1)[0].strip() or text


def particulars(text: str | None) -> str:
    """The reason without its kind ("" when it has none)."""
    kind, colon, rest = (text or "").partition(":")
    return rest.strip() if colon else ""


def is_kind(text: str | None, kind: str) -> bool:
    return reason_kind(text) == kind


def original_usable(text: str | None) -> bool:
    """Whether a trace with this reason had an original worth pruning (see ORIGINAL_UNUSABLE)."""
    return reason_kind(text) not in ORIGINAL_UNUSABLE
