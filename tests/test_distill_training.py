"""Real TRL training of SmolLM2-135M-Instruct on CPU, on a dataset made by `drp run --policy rules` + `drp export`.

Kept to a few minutes on two cores: two short traces (about 100 tokens each once rendered), batch 2, so every
step sees the same small batch, and a handful of steps.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drp.cli import app

# the module fixture is built once, on one pytest-xdist worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_distill_training")]

TRACES = [
    {
        "id": "apples",
        "question": "Tom has 3 apples and buys 4 more. How many apples does he have?",
        "gold_answer": "7",
        "response": "Tom starts with 3 apples. He buys 4 more, so 3 + 4 = 7.\n\nWait, let me double-check that. "
        "3 plus 4 is 7, yes.\n\nSo he has 7 apples.\n</think>\n\nTom has \\boxed{7} apples.",
    },
    {
        "id": "pens",
        "question": "A pen costs 2 dollars. How much do 5 pens cost?",
        "gold_answer": "10",
        "response": "Each pen costs 2 dollars, so 5 pens cost 5 times 2, which is 10.\n\nHmm, let me verify. "
        "2 + 2 + 2 + 2 + 2 = 10. Right.\n\nSo 5 pens cost 10 dollars.\n</think>\n\n"
        "The pens cost \\boxed{10} dollars.",
    },
]

# Every step on the same batch of both examples, a constant learning rate, no checkpoints unless asked.
COMMON = [
    "--recipe",
    "smollm2-135m-cpu",
    "--max_length",
    "256",
    "--per_device_train_batch_size",
    "2",
    "--warmup_steps",
    "0",
    "--lr_scheduler_type",
    "constant",
    "--logging_steps",
    "1",
    "--dataloader_pin_memory",
    "false",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("distill-data")
    traces = folder / "traces.jsonl"
    traces.write_text("".join(json.dumps(t) + "\n" for t in TRACES))
    env = {"DRP_RUNS_DIR": str(folder / "runs")}
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(traces), "--policy", "rules", "--run-id", "tiny"], env=env)
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", "tiny", "--out", str(folder / "sft")], env=env)
    assert result.exit_code == 0, result.output
    assert "tiny: 2 examples" in result.output
    return folder / "sft"


class Interrupt(Exception):
    pass


def log_recorder():
    """A trainer callback that keeps every log line the trainer emits (in `.logs`). transformers is imported here,
    not at collection: every pytest worker collects this module, and most never train."""
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        def __init__(self):
            self.logs = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.logs.append(dict(logs or {}))

    return Recorder()


def interrupt_at(step: int):
    """A trainer callback that dies at the end of `step`, like a killed job, after the checkpoints before it."""
    from transformers import TrainerCallback

    class InterruptAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                raise Interrupt(f"killed at step {step}")

    return InterruptAt()


def training_loss(model_dir: Path | str, dataset: Path) -> float:
    """Mean completion loss of the exported examples under a model, rendered the way distill trains."""
    import torch
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from drp.distill.data import render_dataset

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    losses = []
    for row in render_dataset(load_from_disk(str(dataset))["train"], tokenizer):
        prompt = tokenizer(row["prompt"])["input_ids"]
        ids = tokenizer(row["prompt"] + row["completion"])["input_ids"]
        labels = [-100] * len(prompt) + ids[len(prompt) :]
        with torch.no_grad():
            losses.append(model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss.item())
    return sum(losses) / len(losses)


def generate(model_dir: Path | str, question: str) -> str:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    output = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    return tokenizer.decode(output[0][prompt["input_ids"].shape[1] :])


def test_full_fine_tuning_lowers_the_loss_and_the_model_reloads(exported, smollm2, tmp_path, capsys):
    from drp.distill.sft import main

    out = tmp_path / "full"
    recorder = log_recorder()
    main(
        [
            *COMMON,
            "--dataset_name",
            str(exported),
            "--output_dir",
            str(out),
            "--max_steps",
            "3",
            "--learning_rate",
            "1e-4",
            "--save_strategy",
            "no",
        ],
        callbacks=[recorder],
    )

    printed = capsys.readouterr().out
    trained_part = printed.split("trained on ──", 1)[1]
    assert "He buys 4 more, so 3 + 4 = 7." in trained_part or "5 pens cost 5 times 2" in trained_part
    assert "[drp distill] 2 examples (0 too long left out)" in printed and "precision fp32" in printed

    losses = [entry["loss"] for entry in recorder.logs if "loss" in entry]
    assert len(losses) == 3 and losses[-1] < losses[0] * 0.8, losses
    assert all(
        "train_tokens_per_second" in entry and entry["learning_rate"] == 1e-4
        for entry in recorder.logs
        if "loss" in entry
    )

    assert (out / "model.safetensors").exists() and (out / "loss.png").stat().st_size > 1000
    summary = json.loads((out / "drp_distill.json").read_text())
    assert summary["examples"] == 2 and summary["lora"] is False
    assert training_loss(out, exported) < training_loss(smollm2, exported)
    assert generate(out, TRACES[0]["question"]).strip()


def test_lora_interrupted_resumed_and_merged(exported, smollm2, tmp_path, capsys):
    from drp.distill.config import DistillError
    from drp.distill.sft import main

    out = tmp_path / "lora"
    argv = [
        *COMMON,
        "--dataset_name",
        str(exported),
        "--output_dir",
        str(out),
        "--max_steps",
        "3",
        "--use_peft",
        "--lora_r",
        "8",
        "--lora_alpha",
        "16",
        "--lora_target_modules",
        "all-linear",
        "--learning_rate",
        "2e-3",
        "--save_steps",
        "1",
    ]
    with pytest.raises(Interrupt):
        main(argv, callbacks=[interrupt_at(2)])
    assert (out / "checkpoint-1").is_dir() and not (out / "checkpoint-2").exists()
    with pytest.raises(DistillError, match="already holds checkpoints"):
        main(argv)

    capsys.readouterr()
    main([*argv, "--resume", "--merge"])
    printed = capsys.readouterr().out
    assert f"resuming from {out / 'checkpoint-1'}" in printed

    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(losses) == 3 and losses[-1] < losses[0] * 0.8, losses
    assert (out / "adapter_config.json").exists() and (out / "loss.png").exists()
    assert not (out / "model.safetensors").exists()  # the adapter only; the merged model is next to it

    merged = out / "merged"
    assert not (merged / "adapter_config.json").exists()
    # A fresh interpreter where PEFT cannot be imported: the merged model must load and generate anyway.
    probe = (
        "import sys, json; sys.modules['peft'] = None\n"
        "import torch\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        f"merged, base = {str(merged)!r}, {str(smollm2)!r}\n"
        "model = AutoModelForCausalLM.from_pretrained(merged)\n"
        "tokenizer = AutoTokenizer.from_pretrained(merged)\n"
        "ids = tokenizer('Tom has 3 apples', return_tensors='pt')\n"
        "new = model.generate(**ids, max_new_tokens=5, do_sample=False)[0][ids['input_ids'].shape[1]:]\n"
        "name = 'model.layers.0.self_attn.q_proj.weight'\n"
        "reference = AutoModelForCausalLM.from_pretrained(base).state_dict()[name]\n"
        "changed = not torch.equal(model.state_dict()[name], reference)\n"
        "print(json.dumps({'new_tokens': len(new), 'changed': changed}))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"new_tokens": 5, "changed": True}
