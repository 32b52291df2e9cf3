"""Fine-tune a student on pruned traces with TRL's SFTTrainer (prompt–completion data, completion-only loss).

    drp distill --recipe smollm2-135m-cpu --dataset_name exports/demo --output_dir students/demo
    python -m drp.distill.sft --recipe distill/recipes/r1-distill-qwen-1.5b-lora.yaml --dataset_name DIR

Multi-GPU, one process per GPU:

    accelerate launch --config_file distill/accelerate/multi_gpu.yaml -m drp.distill.sft \\
        --recipe r1-distill-qwen-7b-lora --dataset_name DIR --output_dir students/r1-7b-drp

Every recipe key is a field of TRL's ScriptArguments / SFTConfig / ModelConfig or of DistillArguments, and any
of them can be overridden as `--key value`; `--help` lists them. Before the first step, the examples are
rendered and tokenized, checked against max_length, and the pruned thinking is asserted to be inside the
trained tokens; one rendered example is printed. Output: the model (or LoRA adapter) in output_dir with its
checkpoints, loss.png, drp_distill.json, and with --merge a standalone model in output_dir/merged.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from drp.contamination import write_sidecar
from drp.distill.config import DistillError, parse
from drp.errors import EXIT_OK

SUMMARY = "drp_distill.json"


def main(argv: list[str] | None = None, callbacks: list | None = None) -> Path:
    """Parse the recipe and overrides, then train; returns the output folder."""
    script_args, training_args, model_args, distill_args = parse(argv)
    return train(script_args, training_args, model_args, distill_args, callbacks=callbacks)


def train(script_args, training_args, model_args, distill_args, callbacks: list | None = None) -> Path:
    from drp.outputs import check_output

    check_output(Path(training_args.output_dir), "distill", flag="--output_dir")  # never into a run's folder
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTTrainer, get_peft_config, get_quantization_config

    from drp.distill.callbacks import LossPlotCallback
    from drp.distill.data import (
        check_thinking_trained,
        describe_example,
        enforce_max_length,
        has_split,
        load_split,
        render_dataset,
    )
    from drp.distill.merge import merge_adapter
    from drp.models import resolve

    if not model_args.model_name_or_path:
        raise DistillError("no model: set model_name_or_path in the recipe or pass --model_name_or_path")
    if distill_args.merge and not model_args.use_peft:
        raise DistillError("--merge folds a LoRA adapter into its base model; it needs use_peft: true")
    model_path = resolve(model_args.model_name_or_path)
    output_dir = Path(training_args.output_dir)
    resume_from = _resume_point(output_dir, training_args, distill_args, get_last_checkpoint)

    tokenizer = _load_tokenizer(model_path, model_args, training_args)
    turn_end = apply_template(tokenizer, distill_args.template)
    train_split = load_split(script_args.dataset_name, script_args.dataset_train_split, script_args.dataset_config)
    questions = _train_questions(train_split)
    train_rows, dropped = enforce_max_length(
        render_dataset(train_split, tokenizer, turn_end),
        training_args.max_length,
        distill_args.drop_long_examples,
    )
    _evaluate_when_present(script_args, training_args, has_split)
    eval_rows = None
    if training_args.eval_strategy != "no":
        eval_rows, _ = enforce_max_length(
            render_dataset(
                load_split(script_args.dataset_name, script_args.dataset_test_split, script_args.dataset_config),
                tokenizer,
                turn_end,
            ),
            training_args.max_length,
            distill_args.drop_long_examples,
        )

    model_init_kwargs = dict(
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
        attn_implementation=model_args.attn_implementation,
        dtype=model_args.dtype,
    )
    model_init_kwargs.update(training_args.model_init_kwargs or {})
    training_args.model_init_kwargs = model_init_kwargs
    training_args.chat_template_path = None  # already applied to the tokenizer by _load_tokenizer

    trainer = SFTTrainer(
        model=model_path,
        args=training_args,
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        quantization_config=get_quantization_config(model_args),
        callbacks=[
            LossPlotCallback(title=f"{Path(model_path).name} on {script_args.dataset_name}"),
            *(callbacks or []),
        ],
    )
    check_thinking_trained(trainer.train_dataset, tokenizer, train_rows)
    main_process = trainer.accelerator.is_main_process
    if main_process:
        print(describe_example(trainer.train_dataset[0], tokenizer), flush=True)
        lengths = train_rows["n_tokens"]
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        precision = "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32"
        start = f"resuming from {resume_from}" if resume_from else "starting fresh"
        print(
            f"[drp distill] {len(train_rows)} examples ({dropped} too long left out), "
            f"tokens per example mean {sum(lengths) / len(lengths):.0f} max {max(lengths)}; "
            f"{trainable:,} trainable parameters; precision {precision}; {start}",
            flush=True,
        )

    result = trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model(str(output_dir))
    trainer.accelerator.wait_for_everyone()
    merged = None
    if main_process:
        if distill_args.merge:
            merged = merge_adapter(output_dir)
            print(f"[drp distill] merged model saved to {merged}", flush=True)
        if questions is not None:  # kept with the model, so `drp eval` can tell which problems it trained on
            for folder in filter(None, (output_dir, merged)):
                write_sidecar(Path(folder), questions)
        _write_summary(
            output_dir,
            script_args,
            training_args,
            model_args,
            distill_args,
            model_path,
            len(train_rows),
            dropped,
            resume_from,
            result.metrics,
            merged,
        )
        print(f"[drp distill] model saved to {output_dir}", flush=True)
    trainer.accelerator.wait_for_everyone()
    return output_dir


def _train_questions(dataset) -> list[str] | None:
    """Fingerprints of the training split's questions (None when the dataset has no question column)."""
    from drp.contamination import fingerprints

    if "question" not in dataset.column_names:
        print(
            "[drp distill] the dataset has no question column: the student's training questions are not "
            "recorded, so drp eval cannot check it for contamination",
            flush=True,
        )
        return None
    return fingerprints(dataset["question"])


def _evaluate_when_present(script_args, training_args, has_split) -> None:
    """Recipes ask for evaluation on the validation split; a dataset without one trains without it."""
    from transformers.trainer_utils import IntervalStrategy

    if training_args.eval_strategy == "no":
        return
    if has_split(script_args.dataset_name, script_args.dataset_test_split, script_args.dataset_config):
        print(
            f"[drp distill] evaluating on the {script_args.dataset_test_split!r} split every "
            f"{training_args.eval_steps:g} steps",
            flush=True,
        )
        return
    print(
        f"[drp distill] the dataset has no {script_args.dataset_test_split!r} split: no evaluation during "
        "training (`drp export --val-fraction 0.05` holds one out)",
        flush=True,
    )
    training_args.eval_strategy = IntervalStrategy.NO
    training_args.do_eval = False


def _resume_point(output_dir: Path, training_args, distill_args, get_last_checkpoint) -> str | None:
    if training_args.resume_from_checkpoint:
        return training_args.resume_from_checkpoint
    last = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if distill_args.resume:
        if last is None:
            print(f"[drp distill] --resume: no checkpoint in {output_dir}, starting fresh", flush=True)
        return last
    if last and not distill_args.overwrite_output_dir:
        raise DistillError(
            f"{output_dir} already holds checkpoints ({Path(last).name}): pass --resume to continue from the last one, "
            "--overwrite_output_dir to start over, or choose another output_dir"
        )
    return None


def apply_template(tokenizer, name: str) -> str | None:
    """Set the chat layout the recipe names (drp/distill/templates.py); returns what closes an assistant turn.
    The tokenizer is saved with the student, so a server started on it renders prompts the same way."""
    from drp.distill.templates import TEMPLATES, TURN_ENDS

    if name not in TEMPLATES:
        raise DistillError(f"template {name!r} is not one drp has; choose one of: {', '.join(TEMPLATES)}")
    if TEMPLATES[name]:
        tokenizer.chat_template = TEMPLATES[name]
    return TURN_ENDS[name]


def _load_tokenizer(model_path: str, model_args, training_args):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(
            model_path, revision=model_args.model_revision, trust_remote_code=training_args.trust_remote_code
        )
    except (OSError, ValueError) as error:
        raise DistillError(f"cannot load a tokenizer for {model_path!r}: {error}") from None
    if training_args.eos_token and training_args.eos_token in tokenizer.get_vocab():
        # TRL switches the eos token inside the trainer; the completions are rendered before, with the same one.
        tokenizer.eos_token = training_args.eos_token
    template_source = training_args.chat_template_path
    if template_source:
        source = Path(template_source)
        if source.is_file():
            tokenizer.chat_template = source.read_text(encoding="utf-8")
        else:
            tokenizer.chat_template = AutoTokenizer.from_pretrained(template_source).chat_template
    if not tokenizer.chat_template:
        raise DistillError(
            f"the tokenizer of {model_path!r} has no chat template; set chat_template_path to a tokenizer folder "
            "or a .jinja file with the student's template"
        )
    return tokenizer


def _write_summary(
    output_dir: Path,
    script_args,
    training_args,
    model_args,
    distill_args,
    model_path,
    examples,
    dropped,
    resume_from,
    metrics,
    merged,
) -> None:
    summary = {
        "model": model_path,
        "dataset": script_args.dataset_name,
        "examples": examples,
        "dropped_too_long": dropped,
        "resumed_from": resume_from,
        "lora": bool(model_args.use_peft),
        "merged": str(merged) if merged else None,
        "metrics": metrics,
        "args": {
            "script": vars(script_args),
            "model": vars(model_args),
            "distill": vars(distill_args),
            "training": training_args.to_dict(),
        },
    }
    (output_dir / SUMMARY).write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")


def cli(argv: list[str] | None = None) -> int:
    try:
        main(argv)
    except DistillError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(cli())
