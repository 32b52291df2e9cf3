"""Outcomes (drp/outcomes.py): statuses and reason kinds are spelled once; reasons are built and read back there."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from drp import outcomes
from drp.outcomes import (
    ORIGINAL_UNUSABLE,
    TEACHER_ERROR,
    WRONG_ORIGINAL,
    original_usable,
    particulars,
    reason,
    reason_kind,
)

ROOT = Path(__file__).resolve().parents[1]
KINDS = {
    value
    for name, value in vars(outcomes).items()
    if name.isupper() and isinstance(value, str) and value not in outcomes.STATUSES
}


def test_a_reason_is_its_kind_then_its_particulars_and_reads_back():
    text = reason(WRONG_ORIGINAL, "the trace answers 4, gold is 3")
    assert text == "wrong_original: the trace answers 4, gold is 3"  # the stored spelling existing runs hold
    assert reason_kind(text) == WRONG_ORIGINAL and particulars(text) == "the trace answers 4, gold is 3"
    assert reason(outcomes.FALLBACK_RULES) == "fallback_rules" and reason_kind("fallback_rules") == "fallback_rules"
    assert reason(outcomes.PRUNER_UNUSABLE, None) == "pruner_unusable: None"  # as f"...: {error}" wrote it
    assert reason_kind(reason(outcomes.INTERNAL_ERROR, "ValueError: boom")) == "internal_error"
    assert particulars(reason(TEACHER_ERROR, "all endpoints down: x")) == "all endpoints down: x"
    assert reason_kind(None) is None and reason_kind("") is None and particulars(None) == ""


@pytest.mark.parametrize("kind", sorted(ORIGINAL_UNUSABLE))
def test_a_trace_without_a_usable_original_is_not_eligible(kind):
    assert not original_usable(reason(kind, "why"))
    assert original_usable(reason(outcomes.VERIFICATION_FAILED, "after 3 attempts: x"))
    assert original_usable(None) and original_usable("verified")


def _literal_prefixes(path: Path) -> list[str]:
    """String literals (f-string heads included) that begin with a reason kind and its colon."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            node = node.values[0]
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            head = node.value.split(":", 1)[0]
            if ":" in node.value and head in KINDS:
                found.append(f"{path.relative_to(ROOT)}: {node.value[:40]!r}")
    return found


def test_no_module_spells_a_reason_kind_itself():
    """Reasons are written with outcomes.reason and parsed with outcomes.reason_kind, never by hand."""
    files = [p for folder in ("drp", "benchmarks") for p in (ROOT / folder).rglob("*.py")]
    found = [hit for path in files if path.name != "outcomes.py" for hit in _literal_prefixes(path)]
    assert found == []
