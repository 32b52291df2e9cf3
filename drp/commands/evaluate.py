"""`drp eval`: score a served student on GSM8K / MATH-500 / AIME24 / AMC23 over seeds.

(The module is not called eval.py: `eval` is a Python builtin.)
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from drp.commands.sampling import EXIT_STATUS_HELP, echo_progress, exit_for, sampling_command
from drp.errors import UserError
from drp.evals.protocols import DEFAULT_PROTOCOL, PROTOCOLS, protocol_named

# The registered protocols, as typer's choices (an unknown name is refused with the list of known ones).
Protocol = Enum("Protocol", {name: name for name in PROTOCOLS}, type=str)


class Score(str, Enum):
    strict = "strict"
    flexible = "flexible"
    math_verify = "math-verify"


@sampling_command
def eval_command(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Folder for samples.jsonl, metrics; rerun to resume.")],
    benchmarks: Annotated[
        str, typer.Option(help="Comma-separated: gsm8k, math500, aime24, amc23, NAME:SPLIT, hub ids, or .jsonl paths.")
    ] = "gsm8k,math500,aime24,amc23",
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds",
            "--samples",
            min=1,
            help="k: samples per problem (seeds 0..k-1), scored as avg@k, pass@k and maj@k; 1 under --protocol paper.",
        ),
    ] = 3,
    protocol: Annotated[
        Protocol,
        typer.Option(help=" ".join(f"{name}: {protocol.summary}" for name, protocol in PROTOCOLS.items())),
    ] = Protocol[DEFAULT_PROTOCOL],
    score: Annotated[
        Score,
        typer.Option(
            help="--protocol paper: the headline score that accuracy, the table and `drp compare` use on GSM8K: "
            "lm-eval's strict filter ('The answer is N.'), its flexible filter (the last number) or math-verify. "
            "Default flexible: the paper's unpruned baseline closes with a boxed answer, which only the flexible "
            "filter reads (README). The other benchmarks are scored by math-verify. All three are kept per "
            "sample; rerun with another --score to rescore without sampling."
        ),
    ] = Score.flexible,
    train_questions: Annotated[
        Path | None,
        typer.Option(
            help="The student's training questions (train_questions.txt, an export folder or a .jsonl), to count "
            "evaluated problems it trained on (default: the list `drp distill` saved with the model)."
        ),
    ] = None,
    *,
    common: dict,
) -> None:
    """Sample, grade with math-verify, count tokens with the student's tokenizer, write samples and metrics."""
    from drp.evals.evaluation import EvalSettings, run_eval

    names = [name.strip() for name in benchmarks.split(",") if name.strip()]
    if not names:
        raise UserError("--benchmarks is empty")
    common, seeds, paper_max_tokens = protocol_named(protocol.value).options(
        common, seeds, lambda name: _given(ctx, name)
    )
    settings = EvalSettings(
        benchmarks=names,
        out=out,
        seeds=seeds,
        protocol=protocol.value,
        paper_max_tokens=paper_max_tokens,
        score=score.value,
        train_questions=train_questions,
        **common,
    )
    outcome = run_eval(settings, echo=echo_progress)
    print_metrics(outcome.metrics)
    typer.echo(f"samples and metrics in {outcome.out} ({outcome.wall_s:.1f} s)", err=True)
    exit_for(outcome.failed, outcome.aborted, outcome.interrupted, "eval")


def _given(ctx: typer.Context, name: str) -> bool:
    """Whether the user set the option (on the command line or in the environment), not its default."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def print_metrics(metrics: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from drp.terminal import printable

    protocols = sorted({m.get("protocol", "default") for m in metrics.values()})
    paper = "paper" in protocols
    table = Table(title=f"drp eval (protocol: {', '.join(protocols) or 'default'})")
    for column in (
        "benchmark",
        *(("score",) if paper else ()),
        "problems",
        "seeds",
        "accuracy (mean ± sd)",
        "95% CI",
        *(("strict", "flexible") if paper else ()),
        "tokens (mean ± sd)",
        "hit cap",
        "no answer",
        "token mismatch",
        "errors",
        "trained on",
    ):
        table.add_column(column)
    contaminated = []
    for name, m in metrics.items():
        acc, tok, check = m["accuracy"], m["tokens"], m["token_check"]
        mismatch = "n/a" if check["mismatch_rate"] is None else f"{check['mismatch_rate']:.0%}"
        lm_eval = m.get("lm_eval") or {}
        filters = tuple(f"{lm_eval[k]:.1%}" if k in lm_eval else "–" for k in ("strict", "flexible")) if paper else ()
        table.add_row(
            Text(printable(name)),
            *((m.get("score") or "math-verify",) if paper else ()),
            str(m["n_problems"]),
            str(len(m["seeds"])),
            f"{acc['mean']:.1%} ± {acc['std']:.1%}",
            f"[{acc['ci95'][0]:.1%}, {acc['ci95'][1]:.1%}]",
            *filters,
            f"{tok['mean']:.0f} ± {tok['std']:.0f}",
            f"{m['length_capped']['count']} (cap {m['max_tokens']})",
            str(len(m["no_answer"])),
            mismatch,
            str(len(m["errors"])),
            _trained_on(m, name, contaminated),
        )
    console = Console()
    if not console.is_terminal:  # piped or captured: do not squeeze the table into 80 columns
        console.width = 160
    console.print(table)
    console.print(samples_and_tokens_table(metrics))
    for name, count, total in contaminated:
        console.print(
            f"[bold red]WARNING: {escape(printable(name))}: the student trained on {count} of the {total} evaluated "
            "problems; this is not a held-out score[/bold red]"
        )


def samples_and_tokens_table(metrics: dict):
    """The k-sample scores (± standard error over problems) and the thinking/answer token split."""
    from rich.table import Table
    from rich.text import Text

    from drp.evals.report import count_text, rate_text, score_text
    from drp.terminal import printable

    table = Table(title="k samples per problem (± standard error over problems); tokens split at </think>")
    for column in (
        "benchmark",
        "k",
        "avg@k",
        "pass@k",
        "maj@k",
        "thinking mean / median / p90",
        "answer mean",
        "tokens ✓ / ✗",
        "stopped",
        "truncated",
        "no </think>",
        "no answer",
    ):
        table.add_column(column, no_wrap=column in ("avg@k", "pass@k", "maj@k"))
    for name, m in metrics.items():
        split, endings, passes = m.get("token_split") or {}, m.get("endings"), m.get("pass@k") or {}
        largest = max(passes, key=int) if passes else None
        table.add_row(
            Text(printable(name)),
            str((m.get("avg@k") or {}).get("k", "–")),
            score_text(m.get("avg@k")),
            "–" if largest is None else f"@{largest} {score_text(passes[largest])}",
            "–" if not m.get("maj@k") else f"@{m['maj@k']['k']} {score_text(m['maj@k'])}",
            " / ".join(count_text((split.get("thinking") or {}).get(key)) for key in ("mean", "median", "p90")),
            count_text((split.get("answer") or {}).get("mean")),
            " / ".join(
                count_text(((split.get(part) or {}).get("tokens") or {}).get("mean"))
                for part in ("correct", "incorrect")
            ),
            *(rate_text(endings, key) for key in ("stopped", "truncated", "no_think_close", "no_answer")),
        )
    return table


def _trained_on(m: dict, name: str, contaminated: list) -> str:
    info = m.get("contamination") or {}
    if not info.get("checked"):
        return "unknown"
    if info["trained_on"]:
        contaminated.append((name, info["trained_on"], m["n_problems"]))
        return f"[bold red]{info['trained_on']} ⚠[/bold red]"
    return "0"


def register(app: typer.Typer) -> None:
    app.command("eval", epilog=EXIT_STATUS_HELP)(eval_command)
