"""Prompt files: YAML with `system` and `user` Jinja2 templates, rendered into chat messages.

Policy folders are shared between people, so a template is untrusted input: it is rendered in Jinja2's
immutable sandbox (no attributes starting with `_`, no methods that change data, no huge ranges), with
the size of numbers, repeated strings and the rendered text capped. Anything a template does wrong ends
as a PolicyTemplateError naming the policy, the agent and the file, never as code that runs.
"""

from __future__ import annotations

import operator
from functools import lru_cache
from pathlib import Path

import yaml

from drp.policy import MAX_POLICY_FILE_BYTES, Policy, PolicyError
from drp.safe_files import UnsafeFile, read_capped_text

# What the agents pass to their templates (plus `taxonomy`); a template naming anything else is refused
# before a run starts instead of failing on every trace.
VARIABLES = frozenset(
    {
        "question",
        "thinking",
        "units",
        "total_units",
        "first",
        "last",
        "steps",
        "protected",
        "feedback",
        "attempt",
        "original_answer",
        "pruned_reasoning",
        "taxonomy",
        "total_steps",
        "context_before",
        "context_after",
    }
)
MAX_RENDERED_CHARS = 4_000_000  # far above any real prompt (a long trace is ~100k characters)
MAX_REPEAT = 1_000_000  # `'x' * n` and `[..] * n`
MAX_POWER_BITS = 4096  # `a ** b`


class PolicyTemplateError(PolicyError, ValueError):
    """A policy's prompt template is unsafe, malformed, or fails to render."""


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class PolicySandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context, operator_name, left, right):
            if operator_name == "**":
                _check_power(left, right)
                return operator.pow(left, right)
            _check_repeat(left, right)
            return operator.mul(left, right)

    env = PolicySandbox(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
    # Prompts need none of these helpers, and they are the usual first step of a template escape.
    for name in ("lipsum", "cycler", "joiner"):
        env.globals.pop(name, None)
    return env


def _check_power(base, exponent) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0:
        if exponent * abs(base).bit_length() > MAX_POWER_BITS:
            raise OverflowError(f"{base} ** {exponent} is too large for a prompt template")


def _check_repeat(left, right) -> None:
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, (str, list, tuple)) and isinstance(count, int):
            if len(sequence) * count > MAX_REPEAT:
                raise OverflowError(f"repeating a sequence {count} times is too large for a prompt template")


@lru_cache(maxsize=64)
def _templates(path: Path, content_hash: str | None = None):
    """The file's compiled templates, cached per content (`content_hash`, the policy's hash of the file): a prompt
    edited between two runs of one process (a sweep, a test) is compiled afresh, as the policy's hash says."""
    from jinja2 import TemplateSyntaxError, meta, nodes

    env = _environment()
    try:
        text = read_capped_text(path, MAX_POLICY_FILE_BYTES, "prompt file")
    except UnsafeFile as exc:
        raise PolicyTemplateError(f"{path}: {exc}") from None
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyTemplateError(f"{path}: not a readable prompt file: {exc}") from None
    if not isinstance(spec, dict) or {"system", "user"} - set(spec):
        raise PolicyTemplateError(f"{path}: prompt file needs ['system', 'user']")
    compiled = []
    for part in ("system", "user"):
        source = spec[part]
        if not isinstance(source, str):
            raise PolicyTemplateError(f"{path}: {part!r} must be a text template")
        try:
            tree = env.parse(source)
        except TemplateSyntaxError as exc:
            raise PolicyTemplateError(f"{path}: {part} template, line {exc.lineno}: {exc.message}") from None
        # Refused up front, whatever branch they sit in: the sandbox would stop them anyway, at render time.
        for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
            name = _unsafe_attribute(node, nodes)
            if name is not None:
                raise PolicyTemplateError(
                    f"{path}: {part} template, line {node.lineno}: access to {name!r} is "
                    "not allowed (prompt templates run in a sandbox)"
                )
        unknown = meta.find_undeclared_variables(tree) - VARIABLES - set(env.globals)
        if unknown:
            raise PolicyTemplateError(
                f"{path}: {part} template uses unknown variable(s) {sorted(unknown)}; templates get {sorted(VARIABLES)}"
            )
        if any(tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends))):
            raise PolicyTemplateError(f"{path}: {part} template: include, import and extends are not supported")
        compiled.append(env.from_string(tree))
    return tuple(compiled)


# Filters that take an attribute name (or a dotted path of them) as an argument.
ATTRIBUTE_FILTERS = frozenset(
    {"attr", "map", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"}
)


def _unsafe_attribute(node, nodes) -> str | None:
    if isinstance(node, nodes.Getattr):
        names = [node.attr]
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        names = [node.arg.value]
    elif isinstance(node, nodes.Filter) and node.name in ATTRIBUTE_FILTERS:
        values = [*node.args, *(keyword.value for keyword in node.kwargs)]
        names = [
            part
            for value in values
            if isinstance(value, nodes.Const) and isinstance(value.value, str)
            for part in value.value.split(".")
        ]
    else:
        return None
    return next((name for name in names if isinstance(name, str) and name.startswith("_")), None)


def check_templates(policy: Policy) -> None:
    """Load and vet every prompt of the policy (before a run touches any trace)."""
    for agent in policy.agents:
        path = policy.prompt_path(agent)
        if path is not None:
            _templates_for(policy, agent, path)


def render_messages(policy: Policy, agent: str, **variables) -> list[dict]:
    """The chat messages for one agent call (`taxonomy` is always available to templates)."""
    path = policy.prompt_path(agent)
    if path is None:
        raise ValueError(f"policy {policy.name!r}: agent {agent} has no prompt file")
    system, user = _templates_for(policy, agent, path)
    variables.setdefault("taxonomy", policy.taxonomy)
    return [
        {"role": "system", "content": _render(system, variables, policy, agent, path).strip()},
        {"role": "user", "content": _render(user, variables, policy, agent, path).strip()},
    ]


def _templates_for(policy: Policy, agent: str, path: Path):
    try:
        return _templates(path, policy.prompt_hashes.get(agent))
    except PolicyTemplateError as exc:
        raise PolicyTemplateError(f"policy {policy.name!r}, {agent} prompt {exc}") from None


def _render(template, variables: dict, policy: Policy, agent: str, path: Path) -> str:
    from jinja2 import TemplateError

    parts, size = [], 0
    try:
        for chunk in template.generate(**variables):
            size += len(chunk)
            if size > MAX_RENDERED_CHARS:
                raise OverflowError(f"the rendered prompt exceeds {MAX_RENDERED_CHARS:,} characters")
            parts.append(chunk)
    except (TemplateError, OverflowError, ArithmeticError, TypeError, ValueError, LookupError, MemoryError) as exc:
        raise PolicyTemplateError(
            f"policy {policy.name!r}, {agent} prompt {path}: the template failed: {type(exc).__name__}: {exc}"
        ) from None
    return "".join(parts)
