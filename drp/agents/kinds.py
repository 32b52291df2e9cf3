"""The agent kinds: which kinds each agent role comes in, and whether a kind calls the teacher LLM.

A policy's `agents:` names one kind per role; a policy naming another role or kind is refused when it
loads (drp.policy), and each agent module dispatches on exactly these names. Adding a kind means a line
here and its function in the agent's module (tests check that both agree).
"""

from __future__ import annotations

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


def kind_problem(role: str, kind: str) -> str | None:
    """Why `role: kind` is not an agent drp has, or None when it is."""
    if role not in AGENT_KINDS:
        return f"unknown agent {role!r}; the agents are {', '.join(AGENT_KINDS)}"
    if kind not in AGENT_KINDS[role]:
        return f"unknown {role} kind {kind!r}; a {role} is one of: {', '.join(AGENT_KINDS[role])}"
    return None


def uses_llm(role: str, kind: str) -> bool:
    return AGENT_KINDS[role][kind]
