"""`drp report RUN`: a self-contained HTML report of a pruning run (optionally side by side with another)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from drp.errors import UserError
from drp.outcomes import STATUSES


def report(
    run: Annotated[str, typer.Argument(help="Run id (under $DRP_RUNS_DIR) or run folder.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="HTML file to write (default: RUN/report.html).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="List only the first N traces (input order).", min=1)] = None,
    status: Annotated[
        list[str] | None,
        typer.Option(
            help="List only traces with this status (repeat, or comma-separated): " + ", ".join(STATUSES) + "."
        ),
    ] = None,
    vs: Annotated[
        str | None,
        typer.Option("--vs", help="A second run over the same traces, shown side by side (matched by id)."),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Replace an existing file at --out that is not a drp report (never one of the run's own files)."
        ),
    ] = False,
) -> None:
    """Write one HTML file (no network, no server) to read what a run did, trace by trace."""
    from drp.report import write_report

    statuses = [s.strip().lower() for value in status or [] for s in value.split(",") if s.strip()]
    unknown = sorted(set(statuses) - set(STATUSES))
    if unknown:
        raise UserError(f"unknown status {', '.join(unknown)}; use {', '.join(STATUSES)}")
    result = write_report(run, out=out, statuses=statuses or None, limit=limit, vs=vs, overwrite=overwrite)
    typer.echo(f"{result.path}  ({result.traces} traces, {result.bytes / 1e6:.1f} MB, {result.seconds:.1f} s)")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
