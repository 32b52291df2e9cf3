"""Prompt files: YAML with `system` and `user` Jinja2 templates, rendered into chat messages."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from drp.policy import Policy


@lru_cache(maxsize=64)
def _templates(path: Path):
    from jinja2 import Environment, StrictUndefined

    env = Environment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
    spec = yaml.safe_load(path.read_text())
    missing = {"system", "user"} - set(spec)
    if missing:
        raise ValueError(f"{path}: prompt file needs {sorted(missing)}")
    return env.from_string(spec["system"]), env.from_string(spec["user"])


def render_messages(policy: Policy, agent: str, **variables) -> list[dict]:
    """The chat messages for one agent call (`taxonomy` is always available to templates)."""
    path = policy.prompt_path(agent)
    if path is None:
        raise ValueError(f"policy {policy.name!r}: agent {agent} has no prompt file")
    system, user = _templates(path)
    variables.setdefault("taxonomy", policy.taxonomy)
    return [
        {"role": "system", "content": system.render(**variables).strip()},
        {"role": "user", "content": user.render(**variables).strip()},
    ]
