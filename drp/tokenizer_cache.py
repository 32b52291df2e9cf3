"""A local tokenizer folder's Rust tokenizer, kept as transformers built it, so that later processes count tokens
without importing transformers (and torch under it): seconds per `drp` command on a CPU.

The tokenizer transformers builds can differ from the folder's tokenizer.json (for Qwen2 it adds an NFC
normaliser), so what is kept is transformers' own result, serialised, with the two things drp reads besides the
counts: the end-of-sequence text and whether there is a chat template. An entry is keyed by the folder (its path,
and the name, size and modification time of each file in it) and the transformers and tokenizers versions: a
changed folder or upgraded library is a new entry. Entries live under the cache folder (drp.paths.cache_dir); one
that cannot be written or read is simply not used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from drp.jsonl import atomic_write
from drp.paths import cache_dir

INFO = "info.json"
TOKENIZER = "tokenizer.json"


@dataclass(frozen=True)
class KeptTokenizer:
    backend: object  # tokenizers.Tokenizer
    eos_token: str | None
    has_chat_template: bool


def entry_for(name: str) -> Path | None:
    """The cache entry for the tokenizer folder `name`; None for a hub id (or anything not a folder)."""
    folder = Path(name)
    if not folder.is_dir():
        return None
    try:
        stats = {path.name: path.stat() for path in folder.iterdir() if path.is_file()}
        files = sorted((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats.items())
        versions = [metadata.version(package) for package in ("transformers", "tokenizers")]
    except (OSError, metadata.PackageNotFoundError):
        return None
    key = json.dumps([str(folder.resolve()), files, versions])
    return cache_dir() / "tokenizers" / hashlib.sha256(key.encode()).hexdigest()[:24]


def load(entry: Path) -> KeptTokenizer | None:
    """The kept tokenizer, or None when there is no complete, readable entry."""
    try:
        info = json.loads((entry / INFO).read_text(encoding="utf-8"))
        from tokenizers import Tokenizer

        backend = Tokenizer.from_file(str(entry / TOKENIZER))
    except Exception:  # noqa: BLE001 - absent, half-written by a killed process, or unreadable: not used
        return None
    return KeptTokenizer(backend, info.get("eos_token"), bool(info.get("has_chat_template")))


def keep(entry: Path, tokenizer) -> None:
    """Keep a transformers tokenizer's Rust backend (the info file last: its presence means a whole entry)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow (Python) tokenizer: nothing to keep
        return
    eos = getattr(tokenizer, "eos_token", None)
    info = {"eos_token": eos if isinstance(eos, str) and eos else None}
    info["has_chat_template"] = bool(getattr(tokenizer, "chat_template", None))
    try:
        entry.mkdir(parents=True, exist_ok=True)
        for name, text in ((TOKENIZER, backend.to_str()), (INFO, json.dumps(info))):
            with atomic_write(entry / name) as handle:
                handle.write(text)
    except OSError:  # a read-only or full cache: counting goes on, the next process loads through transformers
        pass
