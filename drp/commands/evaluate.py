"""`drp eval`: score a served student on GSM8K / MATH-500 / AIME24 / AMC23 over seeds.

(The module is not called eval.py: `eval` is a Python builtin.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

# Exit statuses, also used by `drp generate`.
EXIT_SAMPLE_ERRORS = 1  # some samples failed (endpoint errors): rerun the same command to retry them
EXIT_BAD_INPUT = 2
EXIT_ENDPOINT_DOWN = 3
EXIT_INTERRUPTED = 130


def eval_command(
    model_url: Annotated[str, typer.Option("--model-url", envvar="DRP_MODEL_URL",
                                           help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")],
    model: Annotated[str, typer.Option("--model", envvar="DRP_MODEL",
                                       help="Model name the server expects (for transformers serve: its path).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for samples.jsonl, metrics; rerun to resume.")],
    benchmarks: Annotated[str, typer.Option(
        help="Comma-separated: gsm8k, math500, aime24, amc23, NAME:SPLIT, hub ids, or .jsonl paths.")
    ] = "gsm8k,math500,aime24,amc23",
    seeds: Annotated[int, typer.Option(min=1, help="Samples per problem (seeds 0..N-1).")] = 3,
    limit: Annotated[Optional[int], typer.Option(min=1, help="First N problems of each benchmark.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Local benchmark files (default: ../shared/data).")] = None,
    source: Annotated[str, typer.Option(help="auto (local file if present, else hub), local or hub.")] = "auto",
    prompt_template: Annotated[Optional[str], typer.Option(
        help="Student family (r1-distill-qwen, qwen-math, plain), a file, or a template with {problem}.")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(
        help="Tokenizer that counts response tokens (default: the model folder's, else R1-Distill-Qwen).")] = None,
    temperature: Annotated[float, typer.Option(min=0.0)] = 0.6,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.95,
    max_tokens: Annotated[int, typer.Option(min=1, help="Generation cap (reported with how often it is hit).")
                          ] = 16384,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight.")] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 1800.0,
    retries: Annotated[int, typer.Option(min=0, help="Client retries per request on 429/5xx/connection errors.")
                       ] = 2,
    api_key_env: Annotated[str, typer.Option(
        help="Environment variable holding the API key (the key itself is never a flag).")] = "OPENAI_API_KEY",
    extra_body: Annotated[Optional[str], typer.Option(help="JSON merged into every request body.")] = None,
    max_consecutive_errors: Annotated[int, typer.Option(help="Stop after this many failures in a row (0: never).")
                                      ] = 20,
    overwrite: Annotated[bool, typer.Option(help="Delete earlier samples at --out first (default: resume).")
                         ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Sample, grade with math-verify, count tokens with the student's tokenizer, write samples and metrics.

    Exit status: 0 done; 1 some samples failed (rerun to retry only those); 2 bad input; 3 endpoint down;
    130 interrupted (rerun to resume).
    """
    from drp.evals.benchmarks import BenchmarkError
    from drp.evals.evaluation import EvalError, EvalSettings, run_eval
    from drp.evals.sampling import Decoding, EndpointDown
    from drp.evals.templates import TemplateError
    import os

    from drp.paths import shared_dir

    names = [name.strip() for name in benchmarks.split(",") if name.strip()]
    if not names:
        _fail("--benchmarks is empty", EXIT_BAD_INPUT)
    if data_dir is None and shared_dir() is not None:
        data_dir = shared_dir() / "data"
    settings = EvalSettings(
        model_url=model_url, model=model, benchmarks=names, out=out, seeds=seeds, limit=limit, data_dir=data_dir,
        source=source, prompt_template=prompt_template, tokenizer=tokenizer,
        decoding=Decoding(temperature, top_p, max_tokens, parse_extra_body(extra_body)),
        concurrency=concurrency, timeout=timeout, retries=retries, api_key=os.environ.get(api_key_env),
        max_consecutive_errors=max_consecutive_errors, progress=not quiet, overwrite=overwrite,
    )
    try:
        outcome = run_eval(settings, echo=lambda line: typer.echo(line, err=True))
    except (BenchmarkError, EvalError, TemplateError) as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
    except EndpointDown as exc:
        _fail(f"{exc}; start one with `drp serve MODEL`", EXIT_ENDPOINT_DOWN)
    print_metrics(outcome.metrics)
    typer.echo(f"samples and metrics in {outcome.out} ({outcome.wall_s:.1f} s)", err=True)
    exit_for(outcome.failed, outcome.aborted, outcome.interrupted, "eval")


def parse_extra_body(text: str | None) -> dict:
    import json

    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"--extra-body is not JSON: {exc}", EXIT_BAD_INPUT)
    if not isinstance(value, dict):
        _fail("--extra-body must be a JSON object", EXIT_BAD_INPUT)
    return value


def exit_for(failed: int, aborted: str | None, interrupted: bool, what: str) -> None:
    if interrupted:
        typer.echo(f"interrupted: finished samples are saved; rerun the same {what} command to resume", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    if aborted:
        typer.echo(f"stopped early: {aborted}; rerun the same {what} command to retry", err=True)
        raise typer.Exit(EXIT_SAMPLE_ERRORS)
    if failed:
        typer.echo(f"{failed} samples failed (recorded with their error); rerun the same {what} command "
                   "to retry them", err=True)
        raise typer.Exit(EXIT_SAMPLE_ERRORS)


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


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
