"""Placeholder: registers nothing yet."""

import typer


def register(app: typer.Typer) -> None:
    pass
