"""`drp export`: accepted traces of one or more runs → a chat SFT dataset (JSONL + `datasets` folder + card)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from drp.layout import DEFAULT_INSTRUCTION


class Format(str, Enum):
    sft = "sft"


class Answer(str, Enum):
    full = "full"
    short = "short"


class Duplicates(str, Enum):
    error = "error"
    first = "first"
    all = "all"


def export(
    runs: Annotated[list[str], typer.Argument(help="Run ids, run folders or pruned.jsonl files; several are mixed.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the dataset to.")],
    format: Annotated[Format, typer.Option(help="Dataset format.")] = Format.sft,
    answer: Annotated[
        Answer, typer.Option(help="full: keep the pruned answer section; short: a single \\boxed{} answer line.")
    ] = Answer.full,
    instruction: Annotated[
        str, typer.Option(help="Appended to each question on its own line (the student family's instruction); "
                               "'' for none.")
    ] = DEFAULT_INSTRUCTION,
    system_prompt: Annotated[Optional[str], typer.Option(help="A system message before each question.")] = None,
    duplicates: Annotated[
        Duplicates, typer.Option(help="Trace ids found in several runs: error, keep the first run's (first), "
                                      "or keep all with ids RUN/ID (all).")
    ] = Duplicates.error,
    overwrite: Annotated[bool, typer.Option(help="Replace an earlier export in --out.")] = False,
) -> None:
    """Turn the accepted traces of RUNS into a prompt–completion SFT dataset for the student."""
    from drp.export import export_dataset

    summary = export_dataset(
        runs, out, instruction=instruction or None, system_prompt=system_prompt,
        answer=answer.value, duplicates=duplicates.value, overwrite=overwrite,
    )
    for run, count in summary.per_run.items():
        dropped = summary.dropped_duplicates.get(run)
        note = f" ({dropped} duplicate ids left out)" if dropped else ""
        typer.echo(f"{run}: {count} examples{note}")
    tokens = summary.info["tokens"]
    if "thinking_reduction" in tokens:
        before, after = tokens["thinking_before"]["mean"], tokens["thinking_after"]["mean"]
        typer.echo(f"thinking tokens: mean {before} → {after} ({tokens['thinking_reduction']:.1%} fewer)")
    typer.echo(f"wrote {summary.examples} examples to {summary.out} (load_from_disk, train.jsonl, README.md)")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
