"""`drp prompts list|show|render`: the pruning policies and their agent prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

prompts_app = typer.Typer(help="Pruning policies and their prompts.", no_args_is_help=True)
PromptsDir = Annotated[Optional[list[Path]], typer.Option(help="Extra folder(s) of policies, searched first.")]


def _policy(name: str, prompts_dir):
    from drp.policy import load_policy

    try:
        return load_policy(name, prompts_dir)
    except (KeyError, FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {str(exc).strip(chr(34))}", err=True)
        raise typer.Exit(2)


@prompts_app.command("list")
def list_policies(prompts_dir: PromptsDir = None) -> None:
    """Policies found (own folders first, then built-in), with what each agent is."""
    from drp.policy import available

    for name, folder in available(prompts_dir).items():
        policy = _policy(name, prompts_dir)
        agents = " ".join(f"{agent}={settings.kind}" for agent, settings in policy.agents.items())
        parent = f" (inherits {policy.inherits})" if policy.inherits else ""
        typer.echo(f"{name}{parent}\t{agents}\t{policy.description}\t{folder}")


@prompts_app.command("show")
def show(
    policy: Annotated[str, typer.Argument(help="Policy name or folder.")],
    agent: Annotated[Optional[str], typer.Argument(help="segmenter | classifier | pruner (default: the policy file).")] = None,
    prompts_dir: PromptsDir = None,
) -> None:
    """The resolved policy settings, or one agent's prompt file with its hash."""
    import yaml

    resolved = _policy(policy, prompts_dir)
    if agent is None:
        typer.echo(yaml.safe_dump(resolved.model_dump(mode="json", exclude={"folders"}), sort_keys=False))
        typer.echo(f"prompt hashes: {resolved.prompt_hashes}")
        return
    if agent not in resolved.agents:
        typer.echo(f"error: policy {resolved.name!r} has no agent {agent!r}; agents: {', '.join(resolved.agents)}", err=True)
        raise typer.Exit(2)
    path = resolved.prompt_path(agent)
    if path is None:
        typer.echo(f"{agent} in {resolved.name!r} is `{resolved.agents[agent].kind}`: no prompt (no LLM)")
        return
    typer.echo(f"# {path} · hash {resolved.prompt_hashes[agent]}")
    typer.echo(path.read_text())


@prompts_app.command("render")
def render_prompt(
    policy: Annotated[str, typer.Argument(help="Policy name or folder.")],
    agent: Annotated[str, typer.Argument(help="segmenter | classifier | pruner")],
    trace: Annotated[str, typer.Option(help="FILE:ID — the trace to render the prompt for.")],
    prompts_dir: PromptsDir = None,
) -> None:
    """The exact messages an agent would receive for one trace (steps cut by rules for later agents)."""
    from drp.agents import rules
    from drp.answers import extract_answer
    from drp.prompting import PolicyTemplateError, render
    from drp.records import load
    from drp.text import atomic_units, split_response

    resolved = _policy(policy, prompts_dir)
    if agent not in resolved.agents or resolved.prompt_path(agent) is None:
        typer.echo(f"error: {agent} in {resolved.name!r} has no prompt to render", err=True)
        raise typer.Exit(2)
    file, _, trace_id = trace.rpartition(":")
    record = next((r.record for r in load(file) if r.id == trace_id and r.record), None)
    if record is None:
        typer.echo(f"error: no usable trace {trace_id!r} in {file}", err=True)
        raise typer.Exit(2)
    split = split_response(record["response"])
    units = atomic_units(split.thinking, resolved.units.max_chars)
    steps = rules.label_steps(rules.unit_steps(units))
    try:
        messages = render(
            resolved, agent, question=record["question"], total_units=len(units),
            units=list(enumerate(units[: resolved.units.per_call], start=1)),
            steps=list(enumerate(steps, start=1)), thinking=split.thinking, feedback=None, attempt=1,
            original_answer=extract_answer(split.answer_section),
        )
    except PolicyTemplateError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    for message in messages:
        typer.echo(f"── {message['role']} ──\n{message['content']}\n")


def register(app: typer.Typer) -> None:
    app.add_typer(prompts_app, name="prompts")
