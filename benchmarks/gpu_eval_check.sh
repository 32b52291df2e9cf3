#!/usr/bin/env bash
# GPU check for `drp serve` + `drp eval`: a small model served on CUDA by the transformers backend (vLLM is not
# installed on the lent GPU machines), `drp eval` against it, and output tokens/s at concurrency 1 and 8, with and
# without transformers' continuous batching.
#
# Two steps, because the GPU machine has no network and lacks some Python packages:
#
#   1. Here (a machine with pip access), from the repo root:
#        bash benchmarks/gpu_eval_check.sh prepare
#      has pip resolve what the GPU image lacks for its Python 3.12 into .whl/ and check offline that it installs
#      (benchmarks/gpu_wheels.py), copies the GSM8K test file and the R1-Distill-Qwen tokenizer into .gpu-carry/,
#      and lists both folders in .git/info/exclude (about 50 MiB).
#   2. On the GPU machine (the device tool's `run`, with carry [".whl", ".gpu-carry"], timeout_s 600):
#        bash benchmarks/gpu_eval_check.sh
#      Figures are printed and written under $OUT (or ./gpu-check-out).
#
# No pretrained student fits in what travels (64 MiB), so the served model is built there from a config: the
# Qwen2.5-0.5B shape (24 layers, hidden 896) with random bf16 weights and the real R1-Distill-Qwen tokenizer. Its
# answers are noise (accuracy ~0) and it seldom stops before --max-tokens, which is what a throughput figure wants:
# every request generates the full cap. Set MODEL=/path/to/checkpoint to serve a real one instead.
set -euo pipefail
cd "$(dirname "$0")/.."

PROBLEMS="${PROBLEMS:-16}"
MAX_TOKENS="${MAX_TOKENS:-128}"
PORT="${PORT:-8011}"
SMOKE_TOKENS="${SMOKE_TOKENS:-64}"
DATA_DIR="${DATA_DIR:-.gpu-carry/data}"
TOKENIZER="${TOKENIZER:-.gpu-carry/tokenizer}"
OUT="${OUT:-$PWD/gpu-check-out}"  # what comes back: the log, throughput tables, metrics, server logs
WORK=/tmp/gpu-eval-check           # everything else
if [[ "${1:-}" == "prepare" ]]; then
    PYTHON="${PYTHON:-python3}"
    mkdir -p .whl .gpu-carry/data/gsm8k
    for dir in /.whl/ /.gpu-carry/; do
        grep -qxF "$dir" .git/info/exclude 2>/dev/null || echo "$dir" >> .git/info/exclude
    done
    "$PYTHON" benchmarks/gpu_wheels.py prepare .whl --for eval --python-version 3.12
    shared="${DRP_SHARED_DIR:-$(cd .. && pwd)/shared}"
    cp "$shared/data/gsm8k/test.jsonl" .gpu-carry/data/gsm8k/
    cp -r "$shared/tokenizers/deepseek-r1-distill-qwen" .gpu-carry/tokenizer
    du -sh .whl .gpu-carry
    echo 'now: run(command="bash benchmarks/gpu_eval_check.sh", carry=[".whl", ".gpu-carry"], timeout_s=600)'
    exit 0
fi

mkdir -p "$OUT" "$WORK"
exec > >(tee "$OUT/gpu_eval_check.log") 2>&1
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

if [[ -f .whl/requirements.txt ]]; then
    python3 -m pip install -q --no-index --no-compile --no-cache-dir --find-links .whl -r .whl/requirements.txt
fi
python3 -c "import torch, transformers, openai, fastapi, uvicorn, math_verify, typer; \
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__)"

MODEL="${MODEL:-/tmp/tiny-qwen2}"
if [[ ! -f "$MODEL/config.json" ]]; then
    python3 - "$MODEL" "$TOKENIZER" <<'EOF'
import sys, torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

tokenizer = AutoTokenizer.from_pretrained(sys.argv[2])
config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                     num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                     tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                     eos_token_id=tokenizer.eos_token_id)
torch.manual_seed(0)
model = Qwen2ForCausalLM(config).to(torch.bfloat16)
model.save_pretrained(sys.argv[1])
tokenizer.save_pretrained(sys.argv[1])
print(f"built {sys.argv[1]}: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters, random weights")
EOF
fi

SERVER_PID=""
start_server() {  # $1: a label; the rest: extra transformers-serve arguments
    local label="$1"; shift
    python3 -m drp.cli serve "$MODEL" --backend transformers --port "$PORT" --log "$OUT/server-$label.log" \
        -- --device "${DEVICE:-cuda}" --dtype bfloat16 "$@" > "$WORK/serve-$label.out" &
    SERVER_PID=$!
    for _ in $(seq 300); do
        grep -q '^ready:' "$WORK/serve-$label.out" 2>/dev/null && { cat "$WORK/serve-$label.out"; return 0; }
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$OUT/server-$label.log"; return 1; }
        sleep 1
    done
    return 1
}
stop_server() {
    [[ -n "$SERVER_PID" ]] && kill -INT "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" || true
    SERVER_PID=""
}
trap stop_server EXIT
URL="http://127.0.0.1:$PORT/v1"

echo "== plain transformers serve (one request at a time)"
start_server plain
# The command itself, as a user runs it: 2 seeds on a few problems, table and exit status.
python3 -m drp.cli eval --model-url "$URL" --model "$MODEL" --benchmarks gsm8k --limit 4 --seeds 2 \
    --max-tokens "$SMOKE_TOKENS" --data-dir "$DATA_DIR" --out "$WORK/eval-smoke" --quiet
python3 benchmarks/eval_throughput.py --model-url "$URL" --model "$MODEL" --data-dir "$DATA_DIR" \
    --problems "$PROBLEMS" --max-tokens "$MAX_TOKENS" --concurrency 1,8 | tee "$OUT/throughput-plain.txt"
stop_server

echo "== transformers serve --continuous-batching"
if start_server cb --continuous-batching; then
    python3 benchmarks/eval_throughput.py --model-url "$URL" --model "$MODEL" --data-dir "$DATA_DIR" \
        --problems "$PROBLEMS" --max-tokens "$MAX_TOKENS" --concurrency 1,8 | tee "$OUT/throughput-cb.txt"
    stop_server
else
    echo "continuous batching did not start (see $OUT/server-cb.log)"
fi
cp "$WORK/eval-smoke/metrics.json" "$OUT/eval-smoke-metrics.json" 2>/dev/null || true
