"""Placeholder: registers nothing yet (see the open issue that owns this command)."""

import typer


def register(app: typer.Typer) -> None:
    pass
