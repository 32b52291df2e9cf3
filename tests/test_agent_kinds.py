"""Agent kinds: one catalogue (drp/agents/kinds.py), checked when a policy loads, implemented by each agent."""

from __future__ import annotations

import pytest
from helpers import EXAMPLES, drp

from drp.agents import classifier, pruner, segmenter, verifier
from drp.agents.kinds import AGENT_KINDS
from drp.policy import PolicyError, available, load_policy


def test_every_declared_kind_has_an_agent_and_no_other():
    implemented = {
        "segmenter": segmenter.SEGMENTERS,
        "classifier": classifier.CLASSIFIERS,
        "pruner": pruner.PRUNERS,
        "judge": verifier.JUDGES,
    }
    assert {role: set(table) for role, table in implemented.items()} == {
        role: set(kinds) for role, kinds in AGENT_KINDS.items()
    }


def test_builtin_policies_use_declared_kinds():
    for name in available():
        policy = load_policy(name)
        assert policy.uses_llm == any(AGENT_KINDS[role][a.kind] for role, a in policy.agents.items())
    assert not load_policy("rules").uses_llm and load_policy("skill-aware").uses_llm


def _policy(tmp_path, agents: str):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "policy.yaml").write_text(f"inherits: rules\nagents:\n{agents}")
    return folder


def test_an_unknown_kind_is_a_policy_error_naming_the_allowed_ones(tmp_path):
    folder = _policy(tmp_path, "  pruner: {kind: rule}\n")
    with pytest.raises(
        PolicyError,
        match=r"unknown pruner kind 'rule'; a pruner is one of: llm-actions, paper, "
        r"rules, identity",
    ):
        load_policy(str(folder))
    result = drp("run", EXAMPLES, "--policy", str(folder), "--run-id", "typo")
    assert result.exit_code == 2 and "unknown pruner kind 'rule'" in result.output


def test_an_unknown_agent_or_an_override_to_an_unknown_kind_is_refused(tmp_path):
    with pytest.raises(
        PolicyError, match=r"unknown agent 'critic'; the agents are segmenter, classifier, pruner, judge"
    ):
        load_policy(str(_policy(tmp_path, "  critic: {kind: llm}\n")))
    result = drp("run", EXAMPLES, "--policy", "rules", "--run-id", "typo", "--set", "agents.classifier.kind=llm-ranges")
    assert result.exit_code == 2 and "a classifier is one of: llm, rules, none" in result.output
    with pytest.raises(PolicyError, match="has no setting 'units.nope.x'"):
        load_policy("rules").with_overrides({"units.nope.x": 1})
