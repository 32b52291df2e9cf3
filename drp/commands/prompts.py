"""`drp prompts list|show|render`: the pruning policies and their agent prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drp.errors import UserError
from drp.terminal import echo

prompts_app = typer.Typer(help="Pruning policies and their prompts.", no_args_is_help=True)
PromptsDir = Annotated[list[Path] | None, typer.Option(help="Extra folder(s) of policies, searched first.")]


def _policy(name: str, prompts_dir):
    from drp.policy import load_policy

    return load_policy(name, prompts_dir)


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
    agent: Annotated[
        str | None, typer.Argument(help="segmenter | classifier | pruner (default: the policy file).")
    ] = None,
    prompts_dir: PromptsDir = None,
) -> None:
    """The resolved policy settings, or one agent's prompt file with its hash."""
    import yaml

    resolved = _policy(policy, prompts_dir)
    if agent is None:
        hashes = resolved.prompt_hashes  # every prompt file read (and vetted) before anything is printed
        typer.echo(yaml.safe_dump(resolved.model_dump(mode="json", exclude={"folders"}), sort_keys=False))
        typer.echo(f"prompt hashes: {hashes}")
        return
    if agent not in resolved.agents:
        raise UserError(f"policy {resolved.name!r} has no agent {agent!r}; agents: {', '.join(resolved.agents)}")
    path = resolved.prompt_path(agent)
    if path is None:
        typer.echo(f"{agent} in {resolved.name!r} is `{resolved.agents[agent].kind}`: no prompt (no LLM)")
        return
    typer.echo(f"# {path} · hash {resolved.prompt_hashes[agent]}")
    echo(resolved.prompt_text(agent))


@prompts_app.command("render")
def render_prompt(
    policy: Annotated[str, typer.Argument(help="Policy name or folder.")],
    agent: Annotated[str, typer.Argument(help="segmenter | classifier | pruner | judge")],
    trace: Annotated[str, typer.Option(help="FILE:ID — the trace to render the prompt for.")],
    prompts_dir: PromptsDir = None,
) -> None:
    """The exact messages an agent would receive for one trace (steps cut by rules for later agents)."""
    from drp.agents import rules
    from drp.answers import extract_answer
    from drp.derivation import needed_passages
    from drp.input_traces import load
    from drp.layout import split_response
    from drp.prompting import render_messages
    from drp.text import unit_layout

    resolved = _policy(policy, prompts_dir)
    if agent not in resolved.agents or resolved.prompt_path(agent) is None:
        raise UserError(f"{agent} in {resolved.name!r} has no prompt to render")
    file, _, trace_id = trace.rpartition(":")
    if not file or not trace_id:
        raise UserError(f"--trace wants FILE:ID (a trace file and the id of one trace in it), got {trace!r}")
    record = next((r.record for r in load(file) if r.id == trace_id and r.record), None)
    if record is None:
        raise UserError(f"no usable trace {trace_id!r} in {file}")
    split = split_response(record["response"])
    units, joins = unit_layout(split.thinking, resolved.units.max_chars, resolved.units.longest)
    steps = rules.label_steps(rules.unit_steps(units, joins))
    answer = extract_answer(split.answer_section)
    needed = needed_passages([s["text"] for s in steps], split.thinking, answer, record["question"]) if answer else {}
    last = min(resolved.units.per_call, len(units))
    messages = render_messages(
        resolved,
        agent,
        question=record["question"],
        total_units=len(units),
        first=1,
        last=last,
        units=list(enumerate(units[:last], start=1)),
        steps=list(enumerate(steps, start=1)),
        total_steps=len(steps),
        context_before=[],
        context_after=[],
        protected={number: note for number, (note, _) in needed.items()},
        thinking=split.thinking,
        pruned_reasoning=split.thinking,
        feedback=None,
        attempt=1,
        original_answer=answer,
    )
    for message in messages:
        echo(f"── {message['role']} ──\n{message['content']}\n")


def register(app: typer.Typer) -> None:
    app.add_typer(prompts_app, name="prompts")
