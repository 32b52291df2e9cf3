"""`drp generate`: sample the student's own long CoT on training problems, keep the correct, complete ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drp.commands.sampling import EXIT_STATUS_HELP, echo_progress, exit_for, sampling_command


@sampling_command
def generate(
    problems: Annotated[
        str, typer.Argument(help="A JSONL file (question/problem + answer fields), or a benchmark such as gsm8k:train.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Trace file for `drp run` (all samples: <stem>.samples.jsonl).")],
    n: Annotated[int, typer.Option("--n", min=1, help="Samples per problem.")] = 4,
    keep: Annotated[str, typer.Option(help="correct (right answer, not cut by the cap) or all.")] = "correct",
    require_think: Annotated[bool, typer.Option(help="Also require a closed </think> in kept samples.")] = False,
    question_field: Annotated[str | None, typer.Option(help="Question field (default: question, problem).")] = None,
    answer_field: Annotated[str | None, typer.Option(help="Gold field (default: gold_answer, answer).")] = None,
    id_field: Annotated[str, typer.Option(help="Id field (rows without it get <file stem>_<row>).")] = "id",
    seed: Annotated[int, typer.Option(help="Seed of sample 0 (sample k uses seed + k).")] = 0,
    *,
    common: dict,
) -> None:
    """Sample K responses per problem, grade them against gold with math-verify, write the kept ones as traces."""
    from drp.evals.problem_sets import Fields
    from drp.generation import GenerateSettings, run_generate

    defaults = Fields()
    fields = Fields(
        question=(question_field,) if question_field else defaults.question,
        answer=(answer_field,) if answer_field else defaults.answer,
        id=id_field or None,
    )
    settings = GenerateSettings(
        problems=problems, out=out, n=n, keep=keep, require_think=require_think, fields=fields, seed=seed, **common
    )
    result = run_generate(settings, echo=echo_progress)
    typer.echo(
        f"{result.samples} samples: {result.correct} correct, {result.length_capped} hit the "
        f"{settings.decoding.max_tokens}-token cap, {result.no_answer} without an answer; kept {result.kept} "
        f"({keep}) in {result.out}; every sample in {result.samples_path} ({result.wall_s:.1f} s)"
    )
    exit_for(result.failed, result.aborted, result.interrupted, "generate")


def register(app: typer.Typer) -> None:
    app.command("generate", epilog=EXIT_STATUS_HELP)(generate)
