"""`drp generate`: sample the student's own long CoT on training problems, keep the correct, complete ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from drp.commands.evaluate import EXIT_BAD_INPUT, EXIT_ENDPOINT_DOWN, exit_for, parse_extra_body


def generate(
    problems: Annotated[str, typer.Argument(
        help="A JSONL file (question/problem + answer fields), or a benchmark such as gsm8k:train.")],
    model_url: Annotated[str, typer.Option("--model-url", envvar="DRP_MODEL_URL", help="OpenAI-compatible base URL.")],
    model: Annotated[str, typer.Option("--model", envvar="DRP_MODEL", help="Model name the server expects.")],
    out: Annotated[Path, typer.Option("--out", help="Trace file for `drp run` (all samples: <stem>.samples.jsonl).")],
    n: Annotated[int, typer.Option("--n", min=1, help="Samples per problem.")] = 4,
    temperature: Annotated[float, typer.Option(min=0.0)] = 0.6,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.95,
    max_tokens: Annotated[int, typer.Option(min=1, help="Generation cap; capped samples are never kept as correct.")
                          ] = 16384,
    keep: Annotated[str, typer.Option(help="correct (right answer, not cut by the cap) or all.")] = "correct",
    require_think: Annotated[bool, typer.Option(help="Also require a closed </think> in kept samples.")] = False,
    limit: Annotated[Optional[int], typer.Option(min=1, help="First N problems.")] = None,
    question_field: Annotated[Optional[str], typer.Option(help="Question field (default: question, problem).")
                              ] = None,
    answer_field: Annotated[Optional[str], typer.Option(help="Gold field (default: gold_answer, answer).")] = None,
    id_field: Annotated[str, typer.Option(help="Id field (rows without it get <file stem>_<row>).")] = "id",
    data_dir: Annotated[Optional[Path], typer.Option(help="Local benchmark files (default: ../shared/data).")] = None,
    source: Annotated[str, typer.Option(help="For benchmark names: auto, local or hub.")] = "auto",
    prompt_template: Annotated[Optional[str], typer.Option(
        help="Student family (r1-distill-qwen, qwen-math, plain), a file, or a template with {problem}.")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="Tokenizer for token counts (default: the student's).")
                         ] = None,
    seed: Annotated[int, typer.Option(help="Seed of sample 0 (sample k uses seed + k).")] = 0,
    concurrency: Annotated[int, typer.Option(min=1)] = 8,
    timeout: Annotated[float, typer.Option(help="Seconds per request.")] = 1800.0,
    retries: Annotated[int, typer.Option(min=0)] = 2,
    api_key_env: Annotated[str, typer.Option(
        help="Environment variable holding the API key (the key itself is never a flag).")] = "OPENAI_API_KEY",
    extra_body: Annotated[Optional[str], typer.Option(help="JSON merged into every request body.")] = None,
    max_consecutive_errors: Annotated[int, typer.Option(help="Stop after this many failures in a row (0: never).")
                                      ] = 20,
    overwrite: Annotated[bool, typer.Option(help="Delete earlier samples at --out first (default: resume).")
                         ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Sample K responses per problem, grade them against gold with math-verify, write the kept ones as traces.

    Exit status: 0 done; 1 some samples failed (rerun to retry only those); 2 bad input; 3 endpoint down;
    130 interrupted (rerun to resume).
    """
    from drp.evals.benchmarks import BenchmarkError, Fields
    from drp.evals.evaluation import EvalError
    from drp.evals.generation import GenerateSettings, run_generate
    from drp.evals.sampling import Decoding, EndpointDown
    from drp.evals.templates import TemplateError
    import os

    from drp.paths import shared_dir

    defaults = Fields()
    fields = Fields(
        question=(question_field,) if question_field else defaults.question,
        answer=(answer_field,) if answer_field else defaults.answer,
        id=id_field or None,
    )
    if data_dir is None and shared_dir() is not None:
        data_dir = shared_dir() / "data"
    settings = GenerateSettings(
        problems=problems, out=out, model_url=model_url, model=model, n=n, keep=keep, require_think=require_think,
        data_dir=data_dir, source=source, limit=limit, fields=fields, prompt_template=prompt_template,
        tokenizer=tokenizer, decoding=Decoding(temperature, top_p, max_tokens, parse_extra_body(extra_body)),
        seed=seed, concurrency=concurrency, timeout=timeout, retries=retries, api_key=os.environ.get(api_key_env),
        max_consecutive_errors=max_consecutive_errors, progress=not quiet, overwrite=overwrite,
    )
    try:
        result = run_generate(settings, echo=lambda line: typer.echo(line, err=True))
    except (BenchmarkError, EvalError, TemplateError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    except EndpointDown as exc:
        typer.echo(f"error: {exc}; start one with `drp serve MODEL`", err=True)
        raise typer.Exit(EXIT_ENDPOINT_DOWN)
    typer.echo(f"{result.samples} samples: {result.correct} correct, {result.length_capped} hit the "
               f"{max_tokens}-token cap, {result.no_answer} without an answer; kept {result.kept} ({keep}) "
               f"in {result.out}; every sample in {result.samples_path} ({result.wall_s:.1f} s)")
    exit_for(result.failed, result.aborted, result.interrupted, "generate")


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
