"""The distill parser: TRL's config dataclasses + ours, a YAML recipe, command-line overrides on top."""

from __future__ import annotations

import difflib
import sys
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path

from drp.errors import UserError
from drp.paths import builtin_recipes_dir


class DistillError(UserError):
    """Bad input found before training starts; the message names what is wrong."""


@dataclass
class DistillArguments:
    """drp's own options, next to TRL's (they can sit in the recipe too)."""

    resume: bool = field(
        default=False,
        metadata={"help": "Resume from the last checkpoint in output_dir (starts fresh when there is none)."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Train from scratch even when output_dir already holds checkpoints."},
    )
    drop_long_examples: bool = field(
        default=False,
        metadata={"help": "Leave out examples longer than max_length instead of stopping with an error."},
    )
    template: str = field(
        default="model",
        metadata={
            "help": "The chat layout: model (the tokenizer's own chat template; R1-Distill: its R1 layout) or "
            "qwen (ChatML with Qwen's default system prompt, each turn closed by <|im_end|>: the "
            "paper's LLaMA-Factory `template: qwen`).",
            "choices": ["model", "qwen"],
        },
    )
    merge: bool = field(
        default=False,
        metadata={"help": "After LoRA training, fold the adapter into the base model, saved in OUTPUT_DIR/merged."},
    )


def resolve_recipe(name_or_path: str) -> Path:
    """A recipe file, or the name of a built-in recipe (distill/recipes/NAME.yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    builtin = builtin_recipes_dir() / f"{name_or_path.removesuffix('.yaml')}.yaml"
    if builtin.is_file():
        return builtin
    raise DistillError(f"recipe {name_or_path!r} not found; built-in recipes: {', '.join(list_recipes()) or 'none'}")


def list_recipes() -> list[str]:
    folder = builtin_recipes_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def dataclass_types():
    from trl import ModelConfig, ScriptArguments, SFTConfig

    return (ScriptArguments, SFTConfig, ModelConfig, DistillArguments)


def _check_recipe(recipe: Path, known: set[str], types: tuple[type, ...]) -> None:
    """Unknown keys (with a suggestion) and values of the wrong type, before TRL reads the recipe."""
    import yaml

    from drp.distill.recipe_checks import recipe_type_problems

    try:
        values = yaml.safe_load(recipe.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DistillError(f"recipe {recipe} is not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise DistillError(f"recipe {recipe} must be a YAML mapping of option: value")
    unknown = [key for key in values if key not in known and key != "env"]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1)
            hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
        raise DistillError(
            f"recipe {recipe} has unknown keys: {', '.join(hints)}. Keys must be fields of TRL's SFTConfig, "
            "ModelConfig or ScriptArguments, or of drp's DistillArguments (`python -m drp.distill.sft --help`)."
        )
    wrong = recipe_type_problems(values, types)
    if wrong:
        raise DistillError(f"recipe {recipe}: {'; '.join(wrong)}")


def _refuse(message: str):
    raise DistillError(message.replace("argument --", "--"))


def _auto_precision() -> dict:
    """bf16 mixed precision on a CUDA GPU that supports it, fp32 elsewhere (TRL would default to bf16 everywhere)."""
    import torch

    bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return {"bf16": bf16}


def parse(argv: list[str] | None = None):
    """argv (`--recipe R` plus `--key value` overrides) → (script, training, model, distill) argument objects."""
    from trl import TrlParser

    from drp.distill.recipe_checks import sign_problems

    argv = list(sys.argv[1:] if argv is None else argv)
    types = dataclass_types()
    known = {f.name for t in types for f in fields(t)}
    for flag in ("--recipe", "--config"):
        if flag in argv:
            at = argv.index(flag)
            if at + 1 >= len(argv):
                raise DistillError(f"{flag} needs a recipe name or file")
            recipe = resolve_recipe(argv[at + 1])
            _check_recipe(recipe, known, types)
            argv[at : at + 2] = ["--config", str(recipe)]
    parser = TrlParser(types)
    parser.error = _refuse  # argparse would print its whole usage and exit; one line says which value is wrong
    # Our defaults sit under the recipe, which sits under the command line.
    # Token counting on by default: it is what makes transformers log train_tokens_per_second.
    parser.set_defaults(**_auto_precision(), include_num_input_tokens_seen=True)
    try:
        with warnings.catch_warnings():
            # TRL's own default sets the deprecated `gradient_checkpointing` name; the warning is not the user's.
            warnings.filterwarnings("ignore", message="`gradient_checkpointing", category=FutureWarning)
            script_args, training_args, model_args, distill_args = parser.parse_args_and_config(argv)
    except (ValueError, TypeError) as error:  # TRL's and transformers' own checks of the values
        if "not used by the HfArgumentParser" in str(error):
            raise DistillError(f"unknown command-line options: {str(error).split(':', 1)[1].strip()}") from None
        raise DistillError(" ".join(str(error).split())) from None
    out_of_range = sign_problems(training_args, model_args)
    if out_of_range:
        raise DistillError("; ".join(out_of_range))
    if training_args.include_num_input_tokens_seen == "all":
        # The parser can only say yes/no; count real tokens, not padding, so tokens/s means something.
        training_args.include_num_input_tokens_seen = "non_padding"
    return script_args, training_args, model_args, distill_args
