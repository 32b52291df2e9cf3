"""The agent kinds: which kinds each agent role comes in, and whether a kind calls the teacher LLM.

A policy's `agents:` names one kind per role; a policy naming another role or kind is refused when it
loads (drp.policy), without importing the agents. Each agent module registers its implementation of a kind
where it defines it (`@implements("pruner", "paper")`), into its role's registry below, which refuses a kind
not declared here; the agents dispatch through that registry. Adding a kind means a line here and its
decorated function in the agent's module (tests check that both agree).
"""

from __future__ import annotations

from collections.abc import Callable

from drp.registry import Registry

AGENT_KINDS: dict[str, dict[str, bool]] = {  # role → kind → uses the teacher LLM
    "segmenter": {
        "llm-ranges": True,  # numbered units → step ranges; the text is never re-typed
        "echo": True,  # the paper: the teacher re-types the trace as skill-labelled steps
        "rules": False,  # one step per unit
    },
    "classifier": {
        "llm": True,  # one skill from the policy's taxonomy per step
        "rules": False,  # skills by patterns
        "none": False,  # no labels (the segmenter's, if any, stay)
    },
    "pruner": {
        "llm-actions": True,  # KEEP / DELETE / COMPRESS / MERGE per step
        "paper": True,  # the paper: an action per step and one fluent pruned path
        "rules": False,  # pattern-based deletions, never a new word
        "identity": False,  # keep everything (the unpruned baseline)
    },
    "judge": {
        "llm-judge": True,  # reads the pruned reasoning once the checks pass (verify.judge, off by default)
    },
}
OPTIONAL_ROLES = frozenset({"judge"})  # a policy may leave these out
OWN_PATH_PRUNERS = frozenset({"paper"})  # pruner kinds that write the pruned path themselves (not from actions)

# role → the module that defines (and registers) its kinds
OWNERS = {
    "segmenter": "drp.agents.segmenter",
    "classifier": "drp.agents.classifier",
    "pruner": "drp.agents.pruner",
    "judge": "drp.agents.verifier",
}
IMPLEMENTATIONS: dict[str, Registry] = {
    role: Registry(f"{role} kind", owner=OWNERS[role], expected=kinds) for role, kinds in AGENT_KINDS.items()
}


def kind_problem(role: str, kind: str) -> str | None:
    """Why `role: kind` is not an agent drp has, or None when it is."""
    if role not in AGENT_KINDS:
        return f"unknown agent {role!r}; the agents are {', '.join(AGENT_KINDS)}"
    if kind not in AGENT_KINDS[role]:
        return f"unknown {role} kind {kind!r}; a {role} is one of: {', '.join(AGENT_KINDS[role])}"
    return None


def uses_llm(role: str, kind: str) -> bool:
    return AGENT_KINDS[role][kind]


def writes_own_path(pruner_kind: str) -> bool:
    """Whether this pruner writes its pruned path itself, so its actions and its path can disagree."""
    return pruner_kind in OWN_PATH_PRUNERS


def implements(role: str, kind: str) -> Callable:
    """Decorator: the decorated agent function is `role: kind` (declared above)."""
    return IMPLEMENTATIONS[role].register(kind)


def agent_for(role: str, kind: str) -> Callable:
    return IMPLEMENTATIONS[role].get(kind)
