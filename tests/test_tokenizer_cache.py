"""A tokenizer folder's Rust tokenizer is kept as transformers built it: later processes count the same tokens
without importing transformers, and a changed folder or a broken entry is never used."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import unicodedata

import pytest
from helpers import TORCH_WORKER

from drp import tokenizer_cache, tokens
from drp.tokens import TokenCounter

pytestmark = TORCH_WORKER  # each test loads a tokenizer through transformers

TEXTS = [
    "Okay, so I need 3 + 4 = 7.\n\n</think>\nThe answer is \\boxed{7}.",
    unicodedata.normalize("NFD", "Café, naïve, Ångström: 漢字 🙂"),  # decomposed, as the NFC normaliser undoes
    "<｜end▁of▁sentence｜> and <think> tags",
]


@pytest.fixture
def qwen2_folder(shared_tokenizer, tmp_path, monkeypatch):
    """The shared R1 tokenizer, its file without a normaliser, declared as Qwen2's: transformers adds an NFC
    normaliser to it (a copy of the file alone is not what transformers counts with)."""
    monkeypatch.setenv("DRP_CACHE_DIR", str(tmp_path / "cache"))
    _as_a_new_process()
    folder = tmp_path / "qwen2-tokenizer"
    shutil.copytree(shared_tokenizer, folder)
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["tokenizer_class"] = "Qwen2Tokenizer"
    config["chat_template"] = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    filed = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    filed["normalizer"] = None
    (folder / "tokenizer.json").write_text(json.dumps(filed), encoding="utf-8")
    yield folder
    _as_a_new_process()


def _as_a_new_process():
    tokens._load.cache_clear()
    tokens._load_with_transformers.cache_clear()


def _entries(tmp_path):
    return sorted(p.name for p in (tmp_path / "cache" / "tokenizers").iterdir())


def test_a_kept_tokenizer_counts_what_transformers_counts(qwen2_folder, tmp_path):
    first = TokenCounter(str(qwen2_folder))  # through transformers, and kept
    assert first._full is not None and len(_entries(tmp_path)) == 1
    _as_a_new_process()
    again = TokenCounter(str(qwen2_folder))  # from the kept entry
    assert again._full is None
    assert [again.count(t) for t in TEXTS] == [first.count(t) for t in TEXTS]
    assert again.eos_token == first.eos_token == "<｜end▁of▁sentence｜>"
    as_filed = json.loads((qwen2_folder / "tokenizer.json").read_text(encoding="utf-8"))
    assert as_filed["normalizer"] is None and json.loads(again._fast.to_str())["normalizer"] == {"type": "NFC"}
    messages = [{"role": "user", "content": "3 + 4?"}]
    assert again.count_chat(messages) == first.count_chat(messages) > again.count("3 + 4?")


def test_another_process_counts_without_importing_transformers(qwen2_folder, tmp_path):
    expected = TokenCounter(str(qwen2_folder)).count(TEXTS[0])
    code = (
        "import sys; from drp.tokens import TokenCounter; "
        f"print(TokenCounter({str(qwen2_folder)!r}).count({TEXTS[0]!r})); "
        "print('transformers' in sys.modules, 'torch' in sys.modules)"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.split() == [str(expected), "False", "False"]


def test_a_changed_folder_is_a_new_entry_and_a_broken_entry_is_not_used(qwen2_folder, tmp_path):
    TokenCounter(str(qwen2_folder))
    (entry,) = _entries(tmp_path)
    config = json.loads((qwen2_folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    config["eos_token"] = "<think>"
    (qwen2_folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    _as_a_new_process()
    assert TokenCounter(str(qwen2_folder)).eos_token == "<think>"
    assert len(_entries(tmp_path)) == 2

    newest = tokenizer_cache.entry_for(str(qwen2_folder))
    (newest / tokenizer_cache.TOKENIZER).write_text("{not json", encoding="utf-8")  # a killed writer's leftovers
    _as_a_new_process()
    counter = TokenCounter(str(qwen2_folder))
    assert counter._full is not None and counter.count(TEXTS[0]) > 0  # loaded through transformers, kept again
    assert tokenizer_cache.load(newest) is not None


def test_a_cache_that_cannot_be_written_still_counts(qwen2_folder, tmp_path, monkeypatch):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be", encoding="utf-8")
    monkeypatch.setenv("DRP_CACHE_DIR", str(blocked))
    assert TokenCounter(str(qwen2_folder)).count(TEXTS[0]) > 0
