"""CPU cost of the `smollm2-135m-cpu` distill recipe: seconds per optimizer step and peak memory (RSS).

    python benchmarks/distill_cpu.py                 # max length 512 and 1024, 4 steps each
    python benchmarks/distill_cpu.py --lengths 512 --steps 6

Each length runs in its own process (peak RSS is per process). Examples are real R1-Distill-Qwen traces from
../shared (the examples/ traces otherwise), their thinking cut so that each rendered example is as close to the
max length as it can be: every step then trains on batch × max-length tokens. The first step is a warm-up and
is left out of the per-step figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _traces() -> list[dict]:
    from drp.jsonl import read_jsonl
    from drp.paths import shared_dir

    shared = shared_dir()
    source = shared / "data" / "traces" / "r1-distill-qwen-1.5b.e2h-gsm8k.jsonl" if shared else None
    if not source or not source.exists():
        source = REPO / "examples" / "traces.jsonl"
    return read_jsonl(source)


def _examples(tokenizer, max_length: int, count: int) -> list[dict]:
    """Exported-format examples whose rendered length is just under max_length."""
    from drp.distill.data import render_example
    from drp.layout import DEFAULT_INSTRUCTION, sft_completion, split_response, user_message

    rows = []
    for trace in _traces():
        split = split_response(trace["response"])
        thinking, answer = split.thinking, split.answer_section
        prompt = [{"role": "user", "content": user_message(trace["question"], DEFAULT_INSTRUCTION)}]
        row = {
            "id": trace["id"],
            "prompt": prompt,
            "thinking": thinking.strip(),
            "completion": [{"role": "assistant", "content": ""}],
        }
        words = thinking.split(" ")
        low, high = 1, len(words)
        while low < high:  # the longest prefix of the thinking that fits
            middle = (low + high + 1) // 2
            row["thinking"] = " ".join(words[:middle]).strip()
            row["completion"][0]["content"] = sft_completion(row["thinking"], answer)
            rendered = render_example(row, tokenizer, strip_bos=False)
            if len(tokenizer(rendered["prompt"] + rendered["completion"])["input_ids"]) <= max_length:
                low = middle
            else:
                high = middle - 1
        row["thinking"] = " ".join(words[:low]).strip()
        row["completion"][0]["content"] = sft_completion(row["thinking"], answer)
        rendered = render_example(row, tokenizer, strip_bos=False)
        if len(tokenizer(rendered["prompt"] + rendered["completion"])["input_ids"]) >= 0.9 * max_length:
            rows.append(row)
        if len(rows) == count:
            return rows
    raise SystemExit(f"not enough traces long enough for max length {max_length}")


def one(max_length: int, steps: int) -> dict:
    """Train `steps` steps of the recipe at one max length in this process; figures as a dict."""
    import torch
    from transformers import AutoTokenizer, TrainerCallback

    from drp.distill.config import parse
    from drp.distill.sft import train
    from drp.models import resolve

    class StepClock(TrainerCallback):
        def __init__(self):
            self.seconds, self.started = [], 0.0

        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.started)

    with tempfile.TemporaryDirectory() as tmp:
        _, recipe_training, recipe_model, _ = parse(["--recipe", "smollm2-135m-cpu", "--output_dir", f"{tmp}/out"])
        batch = recipe_training.per_device_train_batch_size
        tokenizer = AutoTokenizer.from_pretrained(resolve(recipe_model.model_name_or_path))
        data = Path(tmp) / "train.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in _examples(tokenizer, max_length, batch * steps)))
        script, training, model, distill = parse(
            [
                "--recipe",
                "smollm2-135m-cpu",
                "--dataset_name",
                str(data),
                "--output_dir",
                f"{tmp}/out",
                "--max_length",
                str(max_length),
                "--max_steps",
                str(steps),
                "--save_strategy",
                "no",
                "--logging_steps",
                "1",
                "--dataloader_pin_memory",
                "false",
                "--disable_tqdm",
                "true",
            ]
        )
        clock = StepClock()
        train(script, training, model, distill, callbacks=[clock])
    timed = clock.seconds[1:] or clock.seconds
    per_step = statistics.mean(timed)
    return {
        "max_length": max_length,
        "batch": batch,
        "steps_timed": len(timed),
        "seconds_per_step": round(per_step, 2),
        "tokens_per_second": round(batch * max_length / per_step, 1),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "torch_threads": torch.get_num_threads(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(one(args.one, args.steps)), flush=True)
        return
    print(f"smollm2-135m-cpu recipe on CPU ({os.cpu_count()} cores), {args.steps} steps per length, first left out")
    print(
        f"{'max_length':>10} {'batch':>5} {'s/step':>8} {'tokens/s':>9} {'peak RSS GiB':>13} {'threads':>7} {'load':>5}"
    )
    for length in args.lengths:
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(length), "--steps", str(args.steps)], capture_output=True, text=True
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode or not lines:
            print(f"{length:>10} failed:\n{done.stderr[-3000:]}")
            continue
        r = json.loads(lines[-1][len("RESULT ") :])
        print(
            f"{r['max_length']:>10} {r['batch']:>5} {r['seconds_per_step']:>8} {r['tokens_per_second']:>9} "
            f"{r['peak_rss_gib']:>13} {r['torch_threads']:>7} {r['load_average_1m']:>5}",
            flush=True,
        )


if __name__ == "__main__":
    main()
