"""The `drp` command line. Each command lives in drp/commands/<name>.py and imports heavy libraries
inside its function, so `drp --help` stays instant. A UserError from any command becomes one line,
`error: <message>`, and its exit status (drp/errors.py), here and nowhere else."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from drp.commands import (
    compare,
    distill,
    evaluate,
    export,
    generate,
    inspect,
    models,
    prompts,
    report,
    run,
    serve,
)
from drp.errors import UserError


class _Commands(TyperGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(error.exit_code) from None


app = typer.Typer(
    cls=_Commands,
    name="drp",
    help="Distilled Reasoning Pruning: prune reasoning traces with a verified teacher graph, "
    "distill students on them, serve and evaluate the students.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (run, inspect, prompts, models, export, distill, serve, generate, evaluate, compare, report):
    module.register(app)


if __name__ == "__main__":
    app()
