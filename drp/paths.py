"""Where things live on disk. Environment variables move each folder, which keeps tests hermetic."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
DB_NAME = "drp.db"  # a run folder's database (read and written by drp.store only)


def runs_dir() -> Path:
    """Folder holding one sub-folder per run (`DRP_RUNS_DIR`, default ./runs)."""
    return Path(os.environ.get("DRP_RUNS_DIR", "runs"))


def run_dir(run_id: str) -> Path:
    """A run's folder; RUN may also be given as a path to an existing run folder."""
    as_path = Path(run_id)
    if as_path.is_dir() and (as_path / DB_NAME).exists():
        return as_path
    return runs_dir() / run_id


def cache_dir() -> Path:
    """Models pulled by `drp models pull` (`DRP_CACHE_DIR`, default ~/.cache/drp)."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "drp"
    return Path(os.environ.get("DRP_CACHE_DIR", default))


def shared_dir() -> Path | None:
    """The workplace's shared data folder (`DRP_SHARED_DIR`, default ../shared next to the repo)."""
    candidate = Path(os.environ.get("DRP_SHARED_DIR", REPO_DIR.parent / "shared"))
    return candidate if candidate.is_dir() else None


def _builtin(name_in_wheel: str, name_in_repo: str) -> Path:
    installed = PACKAGE_DIR / name_in_wheel
    return installed if installed.is_dir() else REPO_DIR / name_in_repo


def builtin_prompts_dir() -> Path:
    return _builtin("_builtin_prompts", "prompts")


def builtin_recipes_dir() -> Path:
    return _builtin("_builtin_recipes", "distill/recipes")


DEFAULT_HUB_TOKENIZER = "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"


def default_tokenizer() -> str:
    """The shared R1-Distill-Qwen tokenizer when present, else its hub id."""
    shared = shared_dir()
    if shared and (shared / "tokenizers" / "deepseek-r1-distill-qwen").is_dir():
        return str(shared / "tokenizers" / "deepseek-r1-distill-qwen")
    return DEFAULT_HUB_TOKENIZER
