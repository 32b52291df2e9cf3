#!/usr/bin/env bash
# CUDA smoke run of `drp distill`: the unchanged smollm2-135m-cpu recipe (bf16 switches on by itself on CUDA)
# on a ~43M-parameter Qwen2 built from a config with the R1-Distill-Qwen tokenizer, ~50 steps at batch 8 x 1024
# tokens; prints tokens/s and peak GPU memory, then a short LoRA run with --merge. Figures land in $OUT.
#
# The GPU machines here have torch, transformers, accelerate and peft but no TRL, datasets or network, so
# TRL travels as wheels: pip resolves their whole closure for the GPU's Python and checks offline that it
# installs (benchmarks/gpu_wheels.py). Two steps:
#
#   1. On the development machine (PyPI reachable), fetch the wheels:
#        bash benchmarks/gpu_distill_smoke.sh --prepare-wheels .cache/gpu-wheels [PYTHON_VERSION, default 3.12]
#      and make the shared tokenizer travel too (../shared is outside the repository):
#        mkdir -p .cache/tokenizer && cp -r ../shared/tokenizers/deepseek-r1-distill-qwen/. .cache/tokenizer/
#   2. On the GPU machine, from the repository root, carrying .cache/gpu-wheels and .cache/tokenizer:
#        WHEELS=.cache/gpu-wheels TOKENIZER=.cache/tokenizer OUT=$OUT bash benchmarks/gpu_distill_smoke.sh
#
# Knobs: STEPS (50), BATCH (8), MAX_LENGTH (1024), LORA_STEPS (20; 0 skips the LoRA + merge run),
# ALLOW_CPU=1 (a dry run of the script itself on a machine without CUDA, e.g. STEPS=2 BATCH=1).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--prepare-wheels" ]]; then
    dest="${2:?usage: --prepare-wheels DIR [PYTHON_VERSION]}"
    python benchmarks/gpu_wheels.py prepare "$dest" --for distill --python-version "${3:-3.12}"
    exit 0
fi

WHEELS="${WHEELS:-.cache/gpu-wheels}"
TOKENIZER="${TOKENIZER:-${DRP_SHARED_DIR:-../shared}/tokenizers/deepseek-r1-distill-qwen}"
OUT="${OUT:-artifacts/gpu-smoke}"
STEPS="${STEPS:-50}"
BATCH="${BATCH:-8}"
MAX_LENGTH="${MAX_LENGTH:-1024}"
LORA_STEPS="${LORA_STEPS:-20}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # drp from this checkout, no install needed
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

echo "== environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
if ! python -c "import trl, datasets" 2>/dev/null; then
    [[ -f "$WHEELS/requirements.txt" ]] || { echo "no TRL here and no prepared wheels in $WHEELS (see the header)"; exit 2; }
    python -m pip install --quiet --no-index --find-links "$WHEELS" -r "$WHEELS/requirements.txt"
fi
python - <<'PY'
import importlib
for name in ("torch", "transformers", "accelerate", "peft", "trl", "datasets", "matplotlib"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {module.__version__}")
    except ImportError as error:
        print(f"{name} MISSING ({error})")
import os, torch
if not torch.cuda.is_available():
    assert os.environ.get("ALLOW_CPU") == "1", "no CUDA device (ALLOW_CPU=1 for a dry run on CPU)"
    print("no CUDA: dry run on CPU")
else:
    print("bf16 supported:", torch.cuda.is_bf16_supported())
PY
[[ -f "$TOKENIZER/tokenizer.json" ]] || { echo "no tokenizer at $TOKENIZER (see the header)"; exit 2; }

echo "== tiny Qwen2 from a config + an SFT dataset written by drp export"
python - "$TOKENIZER" "$OUT" "$((STEPS * BATCH))" <<'PY'
import json, sys
from pathlib import Path
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM
from drp.layout import split_response

tokenizer_dir, out, rows = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
config = Qwen2Config(
    vocab_size=len(tokenizer), hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
    bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
)
model = Qwen2ForCausalLM(config)
print(f"parameters: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M")
model.save_pretrained(out / "tiny-qwen2")
tokenizer.save_pretrained(out / "tiny-qwen2")

# The project's example traces, unpruned, repeated to `rows` accepted traces of a pruned.jsonl for drp export.
traces = [json.loads(line) for line in Path("examples/traces.jsonl").read_text().splitlines() if line.strip()]
traces = [t for t in traces if "</think>" in t["response"]]
with open(out / "unpruned.jsonl", "w") as handle:
    for i in range(rows):
        trace = traces[i % len(traces)]
        split = split_response(trace["response"])
        handle.write(json.dumps({
            "id": f"{trace['id']}-{i}", "question": trace["question"], "gold_answer": trace.get("gold_answer"),
            "thinking": split.thinking, "answer_section": split.answer_section,
        }) + "\n")
print(f"traces: {rows}")
PY

# drp export itself when its CLI dependencies are here, else the function it calls.
rm -rf "$OUT/sft"
if python -c "import typer, rich" 2>/dev/null; then
    python -m drp.cli export "$OUT/unpruned.jsonl" --out "$OUT/sft"
else
    python -c "import sys; from pathlib import Path; from drp.export import export_dataset
print(export_dataset([sys.argv[1]], Path(sys.argv[2])).examples, 'examples')" "$OUT/unpruned.jsonl" "$OUT/sft"
fi

# drp distill itself when its CLI dependencies are here, else the same training script it calls.
if python -c "import typer, rich" 2>/dev/null; then DISTILL=(python -m drp.cli distill); else DISTILL=(python -m drp.distill.sft); fi

echo "== full fine-tuning, $STEPS steps, batch $BATCH, max length $MAX_LENGTH (recipe smollm2-135m-cpu, unchanged)"
python - "$OUT" "$STEPS" "$BATCH" "$MAX_LENGTH" <<'PY' 2>&1 | tee "$OUT/full.log"
import json, sys, time
import torch
from transformers import TrainerCallback
from drp.distill.sft import main

out, steps, batch, max_length = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]

class Clock(TrainerCallback):
    """Wall time of the steps after the first (CUDA warm-up), synchronised."""
    def __init__(self):
        self.times = []
    def on_step_end(self, args, state, control, **kwargs):
        if cuda:
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())

cuda = torch.cuda.is_available()
clock = Clock()
if cuda:
    torch.cuda.reset_peak_memory_stats()
student = main(["--recipe", "smollm2-135m-cpu", "--model_name_or_path", f"{out}/tiny-qwen2",
                "--dataset_name", f"{out}/sft", "--output_dir", f"{out}/student-full",
                "--max_steps", steps, "--per_device_train_batch_size", batch, "--max_length", max_length,
                "--save_strategy", "no", "--logging_steps", "10", "--drop_long_examples"], callbacks=[clock])
summary = json.loads((student / "drp_distill.json").read_text())
metrics = summary["metrics"]
tokens = metrics.get("num_input_tokens_seen")
steady = (clock.times[-1] - clock.times[0]) / (len(clock.times) - 1) if len(clock.times) > 1 else None
result = {
    "device": torch.cuda.get_device_name(0) if cuda else "cpu (dry run)",
    "bf16": summary["args"]["training"]["bf16"],
    "steps": len(clock.times),
    "train_runtime_s": metrics.get("train_runtime"),
    "tokens_seen": tokens,
    "tokens_per_second_overall": round(tokens / metrics["train_runtime"], 1) if tokens else None,
    "seconds_per_step_after_first": round(steady, 4) if steady else None,
    "tokens_per_second_after_first": round(tokens / len(clock.times) / steady, 1) if steady and tokens else None,
    "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3) if cuda else None,
    "peak_gpu_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 3) if cuda else None,
    "train_loss": metrics.get("train_loss"),
}
(student.parent / "gpu_smoke.json").write_text(json.dumps(result, indent=2) + "\n")
print("GPU SMOKE " + json.dumps(result))
PY

if [[ "$LORA_STEPS" -gt 0 ]]; then
    echo "== LoRA, $LORA_STEPS steps, then --merge (through ${DISTILL[*]})"
    "${DISTILL[@]}" --recipe smollm2-135m-cpu --model_name_or_path "$OUT/tiny-qwen2" \
        --dataset_name "$OUT/sft" --output_dir "$OUT/student-lora" --max_steps "$LORA_STEPS" \
        --per_device_train_batch_size "$BATCH" --max_length "$MAX_LENGTH" --drop_long_examples \
        --use_peft --lora_target_modules all-linear --learning_rate 1e-3 --save_steps 10 --logging_steps 5 \
        --merge 2>&1 | tee "$OUT/lora.log" | grep -E "precision|loss|merged|saved" || true
    python -c "
from transformers import AutoModelForCausalLM
m = AutoModelForCausalLM.from_pretrained('$OUT/student-lora/merged')
print('merged model loads:', type(m).__name__)"
fi

echo "== figures"
cat "$OUT/gpu_smoke.json"
