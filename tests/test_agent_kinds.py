"""Agent kinds: one catalogue (drp/agent_kinds.py), checked when a policy loads, implemented by each agent."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import EXAMPLES, drp

from drp.agent_kinds import AGENT_KINDS, IMPLEMENTATIONS, agent_for, implements
from drp.policy import PolicyError, available, load_policy
from drp.registry import RegistryError


def test_every_declared_kind_has_an_agent_and_no_other():
    implemented = {role: registry.implemented() for role, registry in IMPLEMENTATIONS.items()}
    assert {role: set(names) for role, names in implemented.items()} == {
        role: set(kinds) for role, kinds in AGENT_KINDS.items()
    }
    assert set(IMPLEMENTATIONS) == set(AGENT_KINDS)


def test_a_kind_is_registered_once_and_only_when_declared():
    IMPLEMENTATIONS["pruner"].implemented()
    with pytest.raises(RegistryError, match=r"pruner kind 'paper' is registered twice"):
        implements("pruner", "paper")(lambda state, ctx, attempt: None)
    with pytest.raises(
        RegistryError, match=r"pruner kind 'fancy' is not declared; the declared ones are llm-actions, paper, rules"
    ):
        implements("pruner", "fancy")(lambda state, ctx, attempt: None)
    with pytest.raises(RegistryError, match=r"unknown classifier kind 'llm-ranges'; known: llm, rules, none"):
        IMPLEMENTATIONS["classifier"].implemented() and agent_for("classifier", "llm-ranges")


def test_loading_a_policy_does_not_import_the_agents():
    """The catalogue is the agents' vocabulary: checking a policy needs no agent module (nor what they import)."""
    code = "import sys, drp.policy as p; p.load_policy('paper'); print(sorted(m for m in sys.modules if 'agents' in m))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"


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
