"""Checks typer has no keyword for, run while the command line is parsed (typer's `min=` covers the rest)."""

from __future__ import annotations

import typer


def above_zero(value: float | None) -> float | None:
    """A duration or size that must be more than 0 (typer's `min=0` would let 0 through)."""
    if value is not None and value <= 0:
        raise typer.BadParameter(f"{value:g} is not above 0")
    return value
