"""Where things live on disk. Environment variables move each folder, which keeps tests hermetic."""

from __future__ import annotations

import os
import re
from pathlib import Path

from drp.errors import UserError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
DB_NAME = "drp.db"  # a run folder's database (read and written by drp.store only)


def runs_dir() -> Path:
    """Folder holding one sub-folder per run (`DRP_RUNS_DIR`, default ./runs)."""
    return Path(os.environ.get("DRP_RUNS_DIR", "runs"))


# A run id is a plain folder name, never a path: nothing outside the runs folder is ever written or deleted.
# It starts with a letter or digit, so `.`, `..`, hidden names and option-like names are never ids.
RUN_ID_RULE = "letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 characters"
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class InvalidRunId(UserError):
    """A run id that is not a plain name."""


def check_run_id(run_id: str) -> str:
    """The run id itself, or InvalidRunId saying what a run id may hold."""
    if not _RUN_ID.fullmatch(run_id):
        raise InvalidRunId(
            f"invalid run id {run_id!r}: a run id is a plain name ({RUN_ID_RULE}); "
            f"runs live in {runs_dir()} (DRP_RUNS_DIR moves it)"
        )
    return run_id


def run_dir(run: str) -> Path:
    """The folder of a run to read: a run id under the runs folder, or a path to a run folder."""
    as_path = Path(run)
    if as_path.is_dir() and (as_path / DB_NAME).exists():
        return as_path
    if not _RUN_ID.fullmatch(run):
        return as_path  # a path to something that is not a run: the reader says what is missing there
    return runs_dir() / run


def work_dir() -> Path:
    """The runs folder's own corner: run locks and runs still being created (never a run id: ids start
    with a letter or digit)."""
    return runs_dir() / ".drp"


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
