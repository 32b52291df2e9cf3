"""`drp distill`: fine-tune a student on an exported dataset with TRL, from a YAML recipe."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

EPILOG = (
    "Any field of TRL's SFTConfig, ModelConfig or ScriptArguments is accepted as an override, e.g. "
    "--dataset_name exports/demo --output_dir students/demo --max_steps 100 --learning_rate 1e-4 "
    "(`python -m drp.distill.sft --help` lists them all). Multi-GPU: accelerate launch --config_file "
    "distill/accelerate/multi_gpu.yaml -m drp.distill.sft --recipe RECIPE ..."
)


def distill(
    ctx: typer.Context,
    recipe: Annotated[
        Optional[str], typer.Option(help="A recipe file, or the name of a built-in one (see --list-recipes).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in output_dir.")] = False,
    merge: Annotated[
        bool, typer.Option("--merge", help="After LoRA training, save a standalone model in OUTPUT_DIR/merged.")
    ] = False,
    drop_long_examples: Annotated[
        bool, typer.Option("--drop_long_examples", help="Leave out examples longer than max_length.")
    ] = False,
    list_recipes: Annotated[bool, typer.Option("--list-recipes", help="Print the built-in recipes and exit.")] = False,
) -> None:
    """Fine-tune a student on pruned traces with TRL's SFTTrainer (LoRA or full), from a YAML recipe."""
    if list_recipes:
        from drp.distill.config import list_recipes as names

        for name in names():
            typer.echo(name)
        return
    argv = list(ctx.args)
    if recipe:
        argv = ["--recipe", recipe, *argv]
    argv += [flag for flag, on in (("--resume", resume), ("--merge", merge),
                                    ("--drop_long_examples", drop_long_examples)) if on]
    from drp.distill.sft import cli

    code = cli(argv)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command(
        "distill",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        epilog=EPILOG,
    )(distill)
