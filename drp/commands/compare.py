"""`drp compare`: eval folders side by side with paired significance tests (Markdown, HTML, PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def compare(
    runs: Annotated[
        list[Path], typer.Argument(help="Eval folders (from `drp eval --out`); the first is the baseline.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Report folder: report.md, report.html, PNG, comparison.json.")],
) -> None:
    """Accuracy, tokens and token reduction per benchmark; exact McNemar and Wilcoxon signed-rank vs the baseline.

    Runs on different problem sets are refused (exit status 2), naming the difference.
    """
    from drp.evals.compare import compare as compare_runs
    from drp.evals.report import markdown, write_report
    from drp.outputs import check_output
    from drp.terminal import echo

    check_output(out, "compare")  # before reading anything (write_report checks again)
    comparison = compare_runs(runs)
    paths = write_report(comparison, out)
    echo(markdown(comparison))
    typer.echo(f"report: {paths['markdown']}, {paths['html']}, {paths['png']}", err=True)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
