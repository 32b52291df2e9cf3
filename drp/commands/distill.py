"""`drp distill`: fine-tune a student on an exported dataset with TRL, from a YAML recipe."""

from __future__ import annotations

from typing import Annotated

import typer

# Only --recipe and --list-recipes belong to typer; every other option goes to the recipe parser untouched,
# so `--merge`, `--merge false` and `--resume` behave exactly as under `accelerate launch -m drp.distill.sft`.
EPILOG = (
    "drp's own options: --resume (continue from the last checkpoint in output_dir), --merge (after LoRA, save a "
    "standalone model in OUTPUT_DIR/merged), --drop_long_examples (leave out examples longer than max_length), "
    "--overwrite_output_dir. Any field of TRL's SFTConfig, ModelConfig or ScriptArguments overrides the recipe, e.g. "
    "--dataset_name exports/demo --output_dir students/demo --max_steps 100 --learning_rate 1e-4 "
    "(`python -m drp.distill.sft --help` lists them all). Multi-GPU: accelerate launch --config_file "
    "distill/accelerate/multi_gpu.yaml -m drp.distill.sft --recipe RECIPE ..."
)


def distill(
    ctx: typer.Context,
    recipe: Annotated[
        str | None, typer.Option(help="A recipe file, or the name of a built-in one (see --list-recipes).")
    ] = None,
    list_recipes: Annotated[bool, typer.Option("--list-recipes", help="Print the built-in recipes and exit.")] = False,
) -> None:
    """Fine-tune a student on pruned traces with TRL's SFTTrainer (LoRA or full), from a YAML recipe."""
    if list_recipes:
        from drp.distill.config import list_recipes as names

        for name in names():
            typer.echo(name)
        return
    from drp.distill.sft import main

    main((["--recipe", recipe] if recipe else []) + list(ctx.args))


def register(app: typer.Typer) -> None:
    app.command(
        "distill",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        epilog=EPILOG,
    )(distill)
