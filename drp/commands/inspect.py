"""Inspecting a run: `drp logs list|show`, `drp diff`, `drp stats`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from drp.terminal import echo, printable, printable_json

logs_app = typer.Typer(help="Per-trace transcripts of a run.", no_args_is_help=True)

RunArg = Annotated[str, typer.Argument(help="Run id (under $DRP_RUNS_DIR) or run folder.")]


def _open(run: str):
    from drp.paths import run_dir
    from drp.store import open_run

    return open_run(run_dir(run))


def _trace(store, trace_id: str) -> dict:
    from drp.errors import UserError

    trace = store.trace(trace_id)
    if trace is None:
        raise UserError(f"no trace {trace_id!r} in this run")
    return trace


@logs_app.command("list")
def logs_list(
    run: RunArg,
    status: Annotated[str | None, typer.Option(help="accepted | rejected | failed | pending")] = None,
    ids: Annotated[bool, typer.Option(help="Print trace ids only.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="JSON lines.")] = False,
) -> None:
    """One line per trace: id, status, attempts, tokens before → after, reason."""
    columns = ("id", "status", "reason", "attempts", "response_tokens_before", "response_tokens_after", "teacher_calls")
    for row in _open(run).traces(columns, statuses=[status] if status else None):
        if ids:
            echo(row["id"], one_line=True)
        elif json_:
            typer.echo(printable_json(json.dumps(row)))
        else:
            tokens = f"{row['response_tokens_before'] or '-'}→{row['response_tokens_after'] or '-'}"
            echo(
                "\t".join(
                    [
                        printable(row["id"], one_line=True),
                        str(row["status"]),
                        f"attempts={row['attempts']}",
                        f"tokens={tokens}",
                        printable(row["reason"] or "", one_line=True),
                    ]
                )
            )


@logs_app.command("show")
def logs_show(
    run: RunArg,
    trace_id: Annotated[str, typer.Argument(help="Trace id.")],
    json_: Annotated[bool, typer.Option("--json", help="The trace and all its calls as JSON.")] = False,
) -> None:
    """Every agent call of one trace, in order, retries included: prompt, raw reply, parsed result, verdict."""
    store = _open(run)
    trace = _trace(store, trace_id)
    calls = store.calls(trace_id)
    if json_:
        typer.echo(printable_json(json.dumps({"trace": trace, "calls": calls}, indent=2, ensure_ascii=False)))
        return
    echo(f"trace {trace_id}: {trace['status']} ({trace['reason']}), attempts {trace['attempts']}")
    for call in calls:
        tokens = _call_tokens(call) if call["llm"] else ""
        reused = (
            f" · reused from run {call['reused_run']}, trace {call['reused_trace']} call #{call['reused_seq']}"
            if call.get("reused_run")
            else ""
        )
        echo(
            f"\n── #{call['seq']} {call['node']} (attempt {call['attempt']}) · {call['model']} · "
            f"{call['prompt_name'] or ''} [{call['prompt_hash'] or ''}] · {call['latency_ms']:.0f} ms {tokens}{reused}"
        )
        for message in call["messages"]:
            echo(f"   [{message['role']}] {_clip(message['content'])}")
        echo(f"   reply:  {_clip(call['raw_output'] or '')}")
        if call["error"]:
            echo(f"   error:  {call['error']}")


def _call_tokens(call: dict) -> str:
    if call["input_tokens"] is None or call["output_tokens"] is None:
        return "tokens missing (no usage from the server)"
    counted = " (counted: no usage from the server)" if call.get("usage") == "counted" else ""
    return f"{call['input_tokens']}→{call['output_tokens']} tok{counted}"


def _clip(text: str, limit: int = 600) -> str:
    text = text.replace("\n", "\n           ")
    return text if len(text) <= limit else text[:limit] + f" … ({len(text) - limit} more chars; --json for all)"


def diff(
    run: RunArg,
    trace_or_run: Annotated[
        str, typer.Argument(metavar="ID_OR_RUN_B", help="Trace id; or a second run, then the trace id.")
    ],
    trace_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="The trace id, after a second run.", show_default=False)
    ] = None,
) -> None:
    """Original vs pruned, step by step, with each step's skill and action. For policies whose teacher re-types
    the trace (the paper's echo), the echo is shown next to the original span it maps to, and the real pruned
    reasoning — the teacher's own text, not assembled from the steps — below. `drp diff RUN_A RUN_B ID`: one trace
    under two runs' policies, step by step (skills, actions, pruned text) with both runs' checks."""
    if trace_id is not None:
        from drp.run_diff import show

        show(_open(run), _open(trace_or_run), trace_id)
        return
    trace_id = trace_or_run
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from drp.store import json_or_text

    store = _open(run)
    trace = _trace(store, trace_id)
    steps = store.steps(trace_id)
    echoed = any(step.get("echo") for step in steps)
    console = Console()
    checks = json_or_text(trace.get("checks")) or {}
    measured = ", ".join(f"{k} {v}" for k, v in checks.items()) if checks else "-"
    # Everything from the run is a Text, never markup: traces and replies hold `[/]`, `[a, b]`, `[bold]`.
    # Control characters are escaped first (drp.terminal): rich passes ESC sequences through as they are.
    header = Text.assemble(
        (printable(trace_id), "bold"),
        printable(
            f" {trace['status']} ({trace['reason']}) · thinking tokens {trace['thinking_tokens_before']} → "
            f"{trace['thinking_tokens_after'] or '-'} · checks: {measured}"
        ),
    )
    console.print(header)
    styles = {"KEEP": "green", "DELETE": "red", "COMPRESS": "yellow", "MERGE": "cyan"}
    table = Table(show_lines=True, expand=True)
    last = "echo (re-typed by the teacher)" if echoed else "pruned"
    for column in ("#", "skill", "action", "original", last):
        table.add_column(column, overflow="fold", ratio=None if column in ("#", "skill", "action") else 1)
    for step in steps:
        action = step["action"] or "-"
        if echoed:
            right = Text(printable(step["echo"] or ""))
            if " ".join(right.plain.split()) == " ".join((step["text"] or "").split()):
                right.append("\n(identical)", style="dim")
        else:
            right = Text(printable({"KEEP": step["text"], "DELETE": ""}.get(action, step["rewritten"] or "") or ""))
        table.add_row(
            str(step["step"]),
            Text(printable(step["skill"] or "-")),
            Text(printable(action), styles.get(action, "white")),
            Text(printable(step["text"] or "")),
            right,
        )
    console.print(table)
    if echoed:
        console.print(Panel(Text(printable(trace["original_thinking"] or "")), title="original thinking (the trace)"))
        console.print(
            Panel(
                Text(printable(_pruned_text(store, trace) or "(none)")),
                title="pruned reasoning (what the student learns)",
            )
        )


def _pruned_text(store, trace: dict) -> str | None:
    """The accepted pruned thinking, or the last pruning the teacher wrote for a trace that was not accepted."""
    if trace["pruned_thinking"]:
        return trace["pruned_thinking"]
    for call in reversed(store.calls(trace["id"], nodes=("pruner",))):
        parsed = call["parsed"] if isinstance(call["parsed"], dict) else {}
        if parsed.get("pruned_reasoning"):
            return parsed["pruned_reasoning"]
    return None


def stats(
    runs: Annotated[
        list[str],
        typer.Argument(help="Run id(s) or folder(s). Several: one side-by-side table on the traces they all finished."),
    ],
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    tokenizer: Annotated[str | None, typer.Option(help="Recount tokens with this tokenizer (path or hub id).")] = None,
    teacher_price: Annotated[
        str | None,
        typer.Option(
            help="Cost at this price instead of the run's: IN,OUT per million tokens, or a name from the price table."
        ),
    ] = None,
    prices_file: Annotated[
        Path | None, typer.Option(help="Your own price table (YAML, the shape of drp/prices.yaml); also DRP_PRICES.")
    ] = None,
) -> None:
    """Counts by status and reason, token reduction (mean, median), attempts, teacher tokens and cost, speed.
    Several runs: accepted share, reductions, derivation pass rate, teacher calls and tokens per trace, cost and
    wall time, per run, on the traces they share."""
    from drp.costs import resolve_price
    from drp.errors import UserError
    from drp.run_stats import compute
    from drp.tokens import TokenCounter

    price = resolve_price(teacher_price, None, prices_file) if teacher_price else None
    if len(runs) > 1:
        from drp.run_compare import compare, table

        if tokenizer:
            raise UserError("--tokenizer recounts one run: give one run with it")
        result = compare([_open(run) for run in runs], price)
        typer.echo(json.dumps(result, indent=2) if json_ else table(result))
        return
    result = compute(_open(runs[0]), TokenCounter(tokenizer) if tokenizer else None, price)
    if json_:
        typer.echo(printable_json(json.dumps(result, indent=2)))
        return
    from drp.costs import format_cost

    pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
    num = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    echo(f"run {result['run_id']} · policy {result['policy']} · tokenizer {result['tokenizer']}")
    echo(
        f"traces {result['traces']}: accepted {result['accepted']}, rejected {result['rejected']}, "
        f"failed {result['failed']}, pending {result['pending']}"
    )
    for reason, count in result["reasons"].items():
        echo(f"  {reason}: {count}")
    echo(
        f"thinking tokens  {num(result['thinking_tokens_before_mean'])} → {num(result['thinking_tokens_after_mean'])}"
        f"  reduction mean {pct(result['thinking_token_reduction_mean'])}, "
        f"median {pct(result['thinking_token_reduction_median'])}"
    )
    echo(
        f"response tokens  {num(result['response_tokens_before_mean'])} → {num(result['response_tokens_after_mean'])}"
        f"  reduction mean {pct(result['response_token_reduction_mean'])}, "
        f"median {pct(result['response_token_reduction_median'])}"
    )
    tokens = lambda v: "missing" if v is None and result["teacher_llm_calls"] else num(v)  # noqa: E731
    echo(
        f"attempts/trace {num(result['attempts_per_trace_mean'])} {result['attempts_histogram']} · teacher calls/trace "
        f"{num(result['teacher_calls_per_trace'])}, "
        f"tokens in/out per trace {tokens(result['teacher_input_tokens_per_trace'])}"
        f"/{tokens(result['teacher_output_tokens_per_trace'])}"
    )
    if result["teacher_reused_calls"]:
        reused_in, reused_out = result["teacher_reused_input_tokens"], result["teacher_reused_output_tokens"]
        typer.echo(
            f"  reused from other runs (--reuse): {result['teacher_reused_calls']} calls, "
            f"{'missing' if reused_in is None else f'{reused_in:,}'}/"
            f"{'missing' if reused_out is None else f'{reused_out:,}'} tokens in/out not spent "
            f"({num(result['teacher_reused_calls_per_trace'])} per trace); the figures above are this run's own"
        )
    if result["teacher_calls_without_usage"]:
        counted = result["teacher_calls_counted_with_tokenizer"]
        echo(
            f"  {result['teacher_calls_without_usage']} of {result['teacher_llm_calls']} teacher calls came without "
            f"usage: {counted} counted with the teacher's tokenizer"
            + (
                ""
                if counted == result["teacher_calls_without_usage"]
                else ", the rest missing (pass --teacher-tokenizer to count them)"
            )
        )
    cost = result["cost"]
    if cost["price"] is None:
        if result["teacher_llm_calls"]:  # a run without teacher calls (rules, identity) has no cost to price
            echo("teacher cost unknown: no price (drp stats --teacher-price IN,OUT or NAME)")
    else:
        unknown = f" · {cost['unknown_traces']} traces without token usage" if cost["unknown_traces"] else ""
        saved = (
            f" · saved by reuse {format_cost(cost['saved'], cost['currency'])}"
            if result["teacher_reused_calls"]
            else ""
        )
        echo(
            f"teacher cost {format_cost(cost['total'], cost['currency'])} · per trace "
            f"{format_cost(cost['per_trace'], cost['currency'])} ({cost['described']}){unknown}{saved}"
        )
    for endpoint in result["endpoints"]:
        latency = "-" if endpoint["mean_latency_ms"] is None else f"{endpoint['mean_latency_ms']:.0f} ms"
        echo(
            f"endpoint {endpoint['endpoint']}: {endpoint['calls']} calls, {endpoint['errors']} errors, "
            f"mean latency {latency}"
        )
    echo(
        f"wall {result['wall_seconds']:.1f}s over {result['sessions']} session(s) · "
        f"{num(result['traces_per_second'])} traces/s"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(logs_app, name="logs")
    app.command("diff")(diff)
    app.command("stats")(stats)
