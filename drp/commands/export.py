"""`drp export`: accepted traces of one or more runs → a chat SFT dataset (JSONL + `datasets` folder + card)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from drp.layout import DEFAULT_INSTRUCTION


class Format(str, Enum):
    sft = "sft"


class Answer(str, Enum):
    full = "full"
    short = "short"
    answer_line = "answer-line"


class Duplicates(str, Enum):
    error = "error"
    first = "first"
    all = "all"


def export(
    runs: Annotated[list[str], typer.Argument(help="Run ids, run folders or pruned.jsonl files; several are mixed.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the dataset to.")],
    format: Annotated[Format, typer.Option(help="Dataset format.")] = Format.sft,
    answer: Annotated[
        Answer,
        typer.Option(
            help="full: keep the pruned answer section; short: a single \\boxed{} answer line; "
            "answer-line: 'The answer is N.', the closing line the paper's strict filter reads "
            "(so a student trained on any policy's traces is scored fairly under "
            "`drp eval --protocol paper --score strict`)."
        ),
    ] = Answer.full,
    instruction: Annotated[
        str,
        typer.Option(help="Appended to each question on its own line (the student family's instruction); '' for none."),
    ] = DEFAULT_INSTRUCTION,
    system_prompt: Annotated[str | None, typer.Option(help="A system message before each question.")] = None,
    duplicates: Annotated[
        Duplicates,
        typer.Option(
            help="Trace ids found in several runs: error, keep the first run's (first), "
            "or keep all with ids RUN/ID (all)."
        ),
    ] = Duplicates.error,
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier export in --out.")] = False,
    exclude_benchmarks: Annotated[
        str | None,
        typer.Option(
            help="Leave out examples whose question is in these benchmarks: comma-separated names or .jsonl files, "
            "as `drp eval --benchmarks` takes them (e.g. gsm8k,math500,aime24,amc23)."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Local benchmark files for --exclude-benchmarks (default: ../shared/data).")
    ] = None,
    val_fraction: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.99,
            help="Hold out this share of the examples (by question, deterministically) as a validation split; "
            "the recipes evaluate on it during training. The paper held out 0.05.",
        ),
    ] = 0.0,
) -> None:
    """Turn the accepted traces of RUNS into a prompt–completion SFT dataset for the student.

    Every training question's fingerprint goes into the dataset card and train_questions.txt, so `drp eval`
    can tell which evaluated problems a student trained on."""
    from drp.export import export_dataset
    from drp.paths import shared_dir

    names = [name.strip() for name in (exclude_benchmarks or "").split(",") if name.strip()]
    if data_dir is None and shared_dir() is not None:
        data_dir = shared_dir() / "data"
    summary = export_dataset(
        runs,
        out,
        instruction=instruction or None,
        system_prompt=system_prompt,
        answer=answer.value,
        duplicates=duplicates.value,
        overwrite=overwrite,
        exclude_benchmarks=names,
        data_dir=data_dir,
        val_fraction=val_fraction,
    )
    for run, count in summary.per_run.items():
        dropped = summary.dropped_duplicates.get(run)
        note = f" ({dropped} duplicate ids left out)" if dropped else ""
        typer.echo(f"{run}: {count} examples{note}")
    excluded = summary.excluded
    if excluded.per_benchmark:
        per = ", ".join(
            f"{name} {count} (of its {excluded.benchmark_sizes[name]} questions)"
            for name, count in excluded.per_benchmark.items()
        )
        typer.echo(f"excluded {excluded.dropped} examples whose question is in an evaluation benchmark: {per}")
    if summary.validation:
        typer.echo(
            f"validation split: {summary.validation} examples (held out by question); "
            f"train: {summary.examples - summary.validation}"
        )
    tokens = summary.info["tokens"]
    if "thinking_reduction" in tokens:
        before, after = tokens["thinking_before"]["mean"], tokens["thinking_after"]["mean"]
        typer.echo(f"thinking tokens: mean {before} → {after} ({tokens['thinking_reduction']:.1%} fewer)")
    typer.echo(
        f"wrote {summary.examples} examples to {summary.out} (load_from_disk, train.jsonl, README.md, "
        f"{summary.info['train_questions']['file']})"
    )


def register(app: typer.Typer) -> None:
    app.command("export")(export)
