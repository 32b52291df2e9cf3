"""`drp eval`: score a served student on GSM8K / MATH-500 / AIME24 / AMC23 over seeds.

(The module is not called eval.py: `eval` is a Python builtin.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drp.commands.sampling import EXIT_STATUS_HELP, echo_progress, exit_for, sampling_command
from drp.errors import UserError


@sampling_command
def eval_command(
    out: Annotated[Path, typer.Option("--out", help="Folder for samples.jsonl, metrics; rerun to resume.")],
    benchmarks: Annotated[str, typer.Option(
        help="Comma-separated: gsm8k, math500, aime24, amc23, NAME:SPLIT, hub ids, or .jsonl paths.")
    ] = "gsm8k,math500,aime24,amc23",
    seeds: Annotated[int, typer.Option(min=1, help="Samples per problem (seeds 0..N-1).")] = 3,
    *, common: dict,
) -> None:
    """Sample, grade with math-verify, count tokens with the student's tokenizer, write samples and metrics."""
    from drp.evals.evaluation import EvalSettings, run_eval

    names = [name.strip() for name in benchmarks.split(",") if name.strip()]
    if not names:
        raise UserError("--benchmarks is empty")
    outcome = run_eval(EvalSettings(benchmarks=names, out=out, seeds=seeds, **common), echo=echo_progress)
    print_metrics(outcome.metrics)
    typer.echo(f"samples and metrics in {outcome.out} ({outcome.wall_s:.1f} s)", err=True)
    exit_for(outcome.failed, outcome.aborted, outcome.interrupted, "eval")


def print_metrics(metrics: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="drp eval")
    for column in ("benchmark", "problems", "seeds", "accuracy (mean ± sd)", "95% CI", "tokens (mean ± sd)",
                   "hit cap", "no answer", "token mismatch", "errors"):
        table.add_column(column)
    for name, m in metrics.items():
        acc, tok, check = m["accuracy"], m["tokens"], m["token_check"]
        mismatch = "n/a" if check["mismatch_rate"] is None else f"{check['mismatch_rate']:.0%}"
        table.add_row(
            name, str(m["n_problems"]), str(len(m["seeds"])),
            f"{acc['mean']:.1%} ± {acc['std']:.1%}", f"[{acc['ci95'][0]:.1%}, {acc['ci95'][1]:.1%}]",
            f"{tok['mean']:.0f} ± {tok['std']:.0f}",
            f"{m['length_capped']['count']} (cap {m['max_tokens']})", str(len(m["no_answer"])), mismatch,
            str(len(m["errors"])),
        )
    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console.width = 160
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("eval", epilog=EXIT_STATUS_HELP)(eval_command)
