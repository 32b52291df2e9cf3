"""The `drp` command line. Each command lives in drp/commands/<name>.py and imports heavy libraries
inside its function, so `drp --help` stays instant. A UserError from any command becomes one line,
`error: <message>`, and its exit status (drp/errors.py), here and nowhere else: so does an option value
the parser refuses (click's usage errors), and a damaged run database met anywhere (drp.store says so)."""

from __future__ import annotations

import sqlite3

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
from drp.errors import EXIT_BAD_INPUT, UserError

# The option parser's usage errors: click's, or those of the copy of click that newer typers carry (the base of
# typer.BadParameter either way).
_USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class _Commands(TyperGroup):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as error:
            _fail(str(error), error.exit_code)
        except _USAGE_ERROR as error:  # a value the option parser refused (--limit 0, an unknown option)
            where = f" (see `{error.ctx.command_path} --help`)" if error.ctx is not None else ""
            _fail(error.format_message() + where, EXIT_BAD_INPUT)
        except sqlite3.DatabaseError as error:
            from drp.disk_errors import disk_error
            from drp.store import damaged_database

            damaged = damaged_database(error) or disk_error(error)
            if damaged is None:
                raise
            _fail(str(damaged), damaged.exit_code)
        except OSError as error:  # the disk refused a write (full, file-size limit, quota, read-only)
            from drp.disk_errors import disk_error

            refused = disk_error(error)
            if refused is None:
                raise
            _fail(str(refused), refused.exit_code)


def _fail(message: str, exit_code: int):
    from drp.redaction import scrub_secrets
    from drp.terminal import printable

    # messages quote input and endpoints' replies: secrets masked, control characters made visible
    typer.echo(f"error: {printable(scrub_secrets(message))}", err=True)
    raise typer.Exit(exit_code) from None


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
