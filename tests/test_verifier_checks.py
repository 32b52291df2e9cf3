"""The verifier's checks: named functions in a registry keyed like the policy's `verify:` settings."""

from __future__ import annotations

import pytest

from drp.agents.verifier import CHECKS
from drp.policy import VerifySettings
from drp.registry import RegistryError

# `verify:` settings that gate something other than a verifier check
GATED_ELSEWHERE = {"check_gold": "agents/prepare.py, before any teacher call", "judge": "the `judge` agent"}


def test_every_verify_setting_names_a_check_in_recording_order():
    settings = set(VerifySettings.model_fields) - set(GATED_ELSEWHERE)
    assert settings <= set(CHECKS.names())
    assert CHECKS.names() == [
        "same_answer",
        "derivation",
        "no_new_numbers",
        "shorter",
        "actions_agree",
        "answer_line",
        "actions_complete",
        "original_correct",
        "not_empty",
        "echo_coverage",
    ]
    assert [name for name in CHECKS.names() if CHECKS.meta(name).get("always_gates")] == ["not_empty"]


def test_an_unknown_check_is_an_error_naming_the_known_ones():
    with pytest.raises(RegistryError, match=r"unknown verifier check 'shortest'; known: same_answer, derivation, "):
        CHECKS.get("shortest")
