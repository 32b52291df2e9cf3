"""`drp distill` before any training step: recipes, parsing, rendering, and every bad input the issue names.

No model is loaded here; the real training runs are in test_distill_training.py.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from helpers import TORCH_WORKER
from typer.testing import CliRunner

from drp.cli import app
from drp.distill.config import DistillError, list_recipes, parse
from drp.distill.data import check_thinking_trained, enforce_max_length, render_dataset

pytestmark = TORCH_WORKER  # recipes are parsed with TRL's own classes

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"
THINKING = "Tom starts with 3 apples. He buys 4 more, so 3 + 4 = 7."
ANSWER = "Tom has \\boxed{7} apples."


def drp(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def example(i: int = 0, thinking: str = THINKING) -> dict:
    return {
        "id": f"ex-{i}",
        "prompt": [{"role": "user", "content": f"{QUESTION}\nPlease reason step by step."}],
        "completion": [{"role": "assistant", "content": f"<think>\n{thinking}\n</think>\n\n{ANSWER}"}],
        "thinking": thinking,
    }


def write_dataset(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def r1_tokenizer(shared_tokenizer):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(shared_tokenizer)


# ── recipes and parsing ─────────────────────────────────────────────────────────────────────────────────────────


def test_builtin_recipes_parse_with_the_papers_settings():
    assert {"r1-distill-qwen-1.5b-lora", "r1-distill-qwen-7b-lora", "smollm2-135m-cpu"} <= set(list_recipes())
    for name, model in [
        ("r1-distill-qwen-1.5b-lora", "DeepSeek-R1-Distill-Qwen-1.5B"),
        ("r1-distill-qwen-7b-lora", "DeepSeek-R1-Distill-Qwen-7B"),
    ]:
        script, training, model_args, distill = parse(["--recipe", name])
        assert model_args.model_name_or_path.endswith(model) and model_args.use_peft
        assert training.learning_rate == 3e-5 and training.num_train_epochs == 3
        assert training.lr_scheduler_type == "cosine" and training.warmup_steps == 0.1
        assert training.max_length == 4096
        assert training.per_device_train_batch_size * training.gradient_accumulation_steps == 8
        assert model_args.lora_target_modules == "all-linear"
        # LLaMA-Factory's LoRA defaults, which the paper's run used
        assert (model_args.lora_r, model_args.lora_alpha, model_args.lora_dropout) == (8, 16, 0.0)
        assert distill.template == "model"
    _, _, _, distill = parse(["--recipe", "r1-distill-qwen-7b-lora", "--template", "qwen"])
    assert distill.template == "qwen"


def test_cpu_recipe_runs_in_fp32_here_and_overrides_win():
    script, training, model_args, distill = parse(
        ["--recipe", "smollm2-135m-cpu", "--max_steps", "7", "--output_dir", "elsewhere"]
    )
    assert training.max_steps == 7 and training.output_dir == "elsewhere"
    assert training.bf16 is False and not training.fp16  # no CUDA here: plain fp32, not TRL's bf16 default
    assert training.include_num_input_tokens_seen == "non_padding"  # what makes tokens/s appear in the logs
    assert distill.drop_long_examples is True and model_args.dtype == "float32"


def test_unknown_recipe_key_is_named_with_a_suggestion(tmp_path):
    recipe = tmp_path / "typo.yaml"
    recipe.write_text("model_name_or_path: x\nlearnig_rate: 1.0e-4\nmax_steps: 2\n")
    with pytest.raises(DistillError, match=r"unknown keys: learnig_rate \(did you mean learning_rate\?\)"):
        parse(["--recipe", str(recipe)])
    result = drp("distill", "--recipe", recipe)
    assert result.exit_code == 2 and "learnig_rate" in result.output


def test_unknown_option_and_unknown_recipe_name():
    with pytest.raises(DistillError, match="unknown command-line options.*--not_an_option"):
        parse(["--not_an_option", "3"])
    with pytest.raises(DistillError, match="recipe 'no-such-recipe' not found; built-in recipes: .*smollm2-135m-cpu"):
        parse(["--recipe", "no-such-recipe"])


# ── rendering and the thinking check, with the real R1-Distill-Qwen tokenizer ──────────────────────────────────


def prepared_row(tokenizer, prompt: str, full: str, thinking: str) -> dict:
    """What TRL's preparation yields: input_ids of prompt+completion, labels masked over the common prefix."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    ids = tokenizer(full)["input_ids"]
    prefix = next((i for i, (a, b) in enumerate(zip(prompt_ids, ids)) if a != b), min(len(prompt_ids), len(ids)))
    return {"id": "ex-0", "thinking": thinking, "input_ids": ids, "labels": [-100] * prefix + ids[prefix:]}


def test_r1_string_rendering_keeps_the_thinking_that_the_chat_template_drops(r1_tokenizer):
    from datasets import Dataset

    ours = render_dataset(Dataset.from_list([example()]), r1_tokenizer)[0]
    assert ours["prompt"].endswith("<｜Assistant｜><think>\n")
    assert ours["completion"] == f"{THINKING}\n</think>\n\n{ANSWER}{r1_tokenizer.eos_token}"
    good = prepared_row(r1_tokenizer, ours["prompt"], ours["prompt"] + ours["completion"], THINKING)
    # One BOS, first: from the template or from the tokenizer, never both.
    assert good["input_ids"][0] == r1_tokenizer.bos_token_id
    assert good["input_ids"].count(r1_tokenizer.bos_token_id) == 1
    check_thinking_trained(Dataset.from_list([good]), r1_tokenizer, None)

    # The conversational way: the R1 template keeps only what follows </think> in an assistant turn.
    messages = example()["prompt"] + example()["completion"]
    full = r1_tokenizer.apply_chat_template(messages, tokenize=False)
    prompt = r1_tokenizer.apply_chat_template(example()["prompt"], tokenize=False, add_generation_prompt=True)
    assert THINKING not in full
    naive = prepared_row(r1_tokenizer, prompt, full, THINKING)
    with pytest.raises(DistillError, match="pruned thinking is not in the trained tokens of 1 example"):
        check_thinking_trained(Dataset.from_list([naive]), r1_tokenizer, None)


def test_thinking_check_covers_packed_blocks(r1_tokenizer):
    from datasets import Dataset

    rendered = render_dataset(Dataset.from_list([example(0), example(1, "Four plus three makes 7.")]), r1_tokenizer)
    rows = [prepared_row(r1_tokenizer, r["prompt"], r["prompt"] + r["completion"], r["thinking"]) for r in rendered]
    packed = Dataset.from_list(
        [{"input_ids": rows[0]["input_ids"] + rows[1]["input_ids"], "labels": rows[0]["labels"] + rows[1]["labels"]}]
    )
    check_thinking_trained(packed, r1_tokenizer, rendered)
    only_first = Dataset.from_list([{"input_ids": rows[0]["input_ids"], "labels": rows[0]["labels"]}])
    with pytest.raises(DistillError, match=r"ex-1"):
        check_thinking_trained(only_first, r1_tokenizer, rendered)


def test_long_examples_are_an_error_or_dropped(r1_tokenizer):
    from datasets import Dataset

    rows = [example(0), example(1, THINKING * 20), example(2, THINKING * 5)]
    rendered = render_dataset(Dataset.from_list(rows), r1_tokenizer)
    lengths = rendered["n_tokens"]
    limit = lengths[0] + 5
    with pytest.raises(
        DistillError,
        match=rf"2 of 3 examples are longer than max_length={limit} tokens "
        rf"\(longest: {lengths[1]} tokens, id ex-1\).*--drop_long_examples",
    ):
        enforce_max_length(rendered, limit, drop=False)
    kept, dropped = enforce_max_length(rendered, limit, drop=True)
    assert dropped == 2 and kept["id"] == ["ex-0"]
    with pytest.raises(DistillError, match="leaves nothing to train on"):
        enforce_max_length(rendered, 5, drop=True)
    assert enforce_max_length(rendered, max(lengths), drop=False)[1] == 0


# ── bad input through `drp distill`, all before any model is loaded ─────────────────────────────────────────────


@pytest.fixture
def tokenizer_only(smollm2, tmp_path) -> Path:
    """A folder with SmolLM2's tokenizer and config but no weights: enough for every check before training."""
    folder = tmp_path / "tok"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "config.json"):
        if (smollm2 / name).exists():
            shutil.copy(smollm2 / name, folder / name)
    return folder


def run_distill(tmp_path, model, dataset, *extra):
    return drp(
        "distill",
        "--recipe",
        "smollm2-135m-cpu",
        "--model_name_or_path",
        model,
        "--dataset_name",
        dataset,
        "--output_dir",
        tmp_path / "student",
        *extra,
    )


def test_missing_tokenizer_and_missing_chat_template(tmp_path, tokenizer_only):
    data = write_dataset(tmp_path / "train.jsonl", [example()])
    (tmp_path / "empty-model").mkdir()
    result = run_distill(tmp_path, tmp_path / "empty-model", data)
    assert result.exit_code == 2 and "cannot load a tokenizer for" in result.output

    (tokenizer_only / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((tokenizer_only / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (tokenizer_only / "tokenizer_config.json").write_text(json.dumps(config))
    result = run_distill(tmp_path, tokenizer_only, data)
    assert result.exit_code == 2 and "has no chat template" in result.output and "chat_template_path" in result.output


def test_dataset_problems_are_named(tmp_path, tokenizer_only):
    from datasets import Dataset, DatasetDict

    empty = tmp_path / "empty-export"
    DatasetDict({"train": Dataset.from_dict({"prompt": [], "completion": []})}).save_to_disk(str(empty))
    result = run_distill(tmp_path, tokenizer_only, empty)
    assert result.exit_code == 2 and re.search(r"dataset '.*empty-export' \(split 'train'\) is empty", result.output)
    result = run_distill(tmp_path, tokenizer_only, write_dataset(tmp_path / "empty.jsonl", []))
    assert result.exit_code == 2 and re.search(r"dataset '.*empty.jsonl' \(split 'train'\) is empty", result.output)

    text_only = write_dataset(tmp_path / "text.jsonl", [{"text": "hello"}])
    result = run_distill(tmp_path, tokenizer_only, text_only)
    assert result.exit_code == 2 and "lacks the column(s) completion, prompt" in result.output

    result = drp(
        "distill",
        "--recipe",
        "smollm2-135m-cpu",
        "--model_name_or_path",
        tokenizer_only,
        "--output_dir",
        tmp_path / "student",
    )
    assert result.exit_code == 2 and "no dataset" in result.output

    long_data = write_dataset(tmp_path / "long.jsonl", [example(0, THINKING * 50)])
    result = run_distill(tmp_path, tokenizer_only, long_data, "--max_length", "64", "--drop_long_examples", "false")
    assert result.exit_code == 2 and "1 of 1 examples are longer than max_length=64" in result.output


def test_existing_checkpoints_need_resume_and_merge_needs_lora(tmp_path, tokenizer_only):
    data = write_dataset(tmp_path / "train.jsonl", [example()])
    (tmp_path / "student" / "checkpoint-2").mkdir(parents=True)
    result = run_distill(tmp_path, tokenizer_only, data)
    assert result.exit_code == 2 and "already holds checkpoints (checkpoint-2)" in result.output
    assert "--resume" in result.output

    result = run_distill(tmp_path, tokenizer_only, data, "--overwrite_output_dir", "--merge")
    assert result.exit_code == 2 and "--merge folds a LoRA adapter" in result.output
