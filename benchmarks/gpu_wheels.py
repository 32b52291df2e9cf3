"""Wheels for a GPU machine without network: pip resolves the whole closure for the target Python, minus what
the GPU image already has, and checks offline that the folder installs.

    python benchmarks/gpu_wheels.py prepare DEST --for eval      # here, where PyPI is reachable
    python -m pip install --no-index --find-links DEST -r DEST/requirements.txt   # there

Listing wheels by hand missed dependencies (openai 3.57 needs httpx2, httpcore2, h11, truststore; fastapi 0.165
needs opentelemetry-api). Here pip works it out: `pip install --dry-run --report` for Python 3.12 on manylinux
x86_64 with the image's own packages pinned, then `pip download --no-deps` of every resolved package the image
does not have, then an offline `pip install --dry-run --no-index` of the requirements against that folder plus
metadata-only stand-ins for the image's packages: if it resolves, nothing is missing.

torch is a stand-in during resolution too: its CUDA wheels' dependencies are not all on the reachable index,
and the image has them. Everything else the image has is shipped as well (small, and pip on the GPU machine
keeps an installed version that satisfies the requirements), because which of those the image lacks is not
known in advance (it had no pydantic, although the packages it has usually pull it in).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# What the lent GPU machines have (DESIGN.md, "Environment facts"), pinned so the resolution agrees with them.
GPU_IMAGE = {"torch": "2.11.0", "transformers": "5.17.0", "accelerate": "1.15.0", "peft": "0.21.0", "pyarrow": "25.0.0"}
# What each prepared GPU script needs on top of the image (the serving extra of transformers spelled out, so the
# offline check sees every package).
NEEDS = {
    "distill": ["trl==1.16.*", "datasets==5.2.*", "pyyaml", "typer", "rich"],
    "eval": [
        "openai",
        "fastapi",
        "uvicorn",
        "starlette",
        "pydantic",
        "rich",
        "math-verify",
        "typer",
        "httpx",
        "tqdm",
        "pyyaml",
    ],
}
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64")


def target_options(python_version: str) -> list[str]:
    abi = "cp" + python_version.replace(".", "")
    options = ["--only-binary=:all:", "--python-version", python_version, "--implementation", "cp", "--abi", abi]
    for platform in PLATFORMS:
        options += ["--platform", platform]
    return options


def image_pins() -> list[str]:
    """`transformers==5.17.*`: any patch release of what the image has."""
    return [f"{name}=={version.rsplit('.', 1)[0]}.*" for name, version in GPU_IMAGE.items()]


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def stand_in(folder: Path, name: str, version: str) -> Path:
    """A metadata-only wheel: `name` at `version`, no files, no dependencies (the image has it installed)."""
    dist = f"{name.replace('-', '_')}-{version}.dist-info"
    files = {
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: drp-gpu-wheels\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = (
        "".join(
            f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},"
            f"{len(text.encode())}\n"
            for path, text in files.items()
        )
        + f"{dist}/RECORD,,\n"
    )
    wheel = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(f"{dist}/RECORD", record)
    return wheel


def pip(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        noise = "is ignored: it is neither a file nor a directory"
        errors = [line for line in done.stderr.splitlines() if noise not in line]
        raise SystemExit(f"pip {args[0]} failed:\n" + "\n".join(errors[-15:]))
    return done


def resolve(requirements: list[str], python_version: str, stand_ins: Path) -> dict[str, str]:
    """name → version of everything pip would install for these requirements on the target."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        pip(
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            "--target",
            str(Path(scratch) / "target"),
            "--find-links",
            str(stand_ins),
            *target_options(python_version),
            *requirements,
        )
        installs = json.loads(report.read_text())["install"]
    return {item["metadata"]["name"]: item["metadata"]["version"] for item in installs}


def check_offline(dest: Path, python_version: str) -> None:
    """The requirements resolve from `dest` and the image's packages alone, with no index."""
    with tempfile.TemporaryDirectory() as scratch:
        image = Path(scratch) / "image"
        image.mkdir()
        for name, version in GPU_IMAGE.items():
            stand_in(image, name, version)
        pip(
            "install",
            "--dry-run",
            "--no-index",
            "--ignore-installed",
            "--quiet",
            "--find-links",
            str(dest),
            "--find-links",
            str(image),
            "--target",
            str(Path(scratch) / "target"),
            *target_options(python_version),
            "-r",
            str(dest / "requirements.txt"),
        )


def prepare(dest: Path, requirements: list[str], python_version: str) -> list[str]:
    dest.mkdir(parents=True, exist_ok=True)
    for stale in dest.glob("*.whl"):  # another version left here would be picked over the checked one
        stale.unlink()
    with tempfile.TemporaryDirectory() as scratch:
        stand_ins = Path(scratch)
        stand_in(stand_ins, "torch", GPU_IMAGE["torch"] + "+image")  # `+image` sorts above the real 2.11.0
        resolved = resolve([*requirements, *image_pins()], python_version, stand_ins)
    image = {normalize(name) for name in GPU_IMAGE}
    wanted = sorted(f"{name}=={version}" for name, version in resolved.items() if normalize(name) not in image)
    pip("download", "--no-deps", "--quiet", "--dest", str(dest), *target_options(python_version), *wanted)
    # The image's pins go in too: pip there must keep them, not look for other versions.
    (dest / "requirements.txt").write_text("\n".join([*requirements, *image_pins()]) + "\n")
    check_offline(dest, python_version)
    return wanted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("prepare", help="resolve, download and check offline")
    make.add_argument("dest", type=Path)
    make.add_argument("--for", dest="script", choices=sorted(NEEDS), required=True, help="which GPU script")
    make.add_argument("requirements", nargs="*", help="more requirements")
    make.add_argument("--python-version", default="3.12")
    check = commands.add_parser("check", help="check offline that DEST/requirements.txt installs from DEST")
    check.add_argument("dest", type=Path)
    check.add_argument("--python-version", default="3.12")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        wanted = prepare(args.dest, [*NEEDS[args.script], *args.requirements], args.python_version)
        size = sum(p.stat().st_size for p in args.dest.glob("*.whl")) / 2**20
        print(
            f"{len(wanted)} wheels for Python {args.python_version} in {args.dest} ({size:.1f} MiB), "
            f"checked offline: {' '.join(wanted)}"
        )
    else:
        check_offline(args.dest, args.python_version)
        print(f"{args.dest}/requirements.txt installs offline for Python {args.python_version}")


if __name__ == "__main__":
    main()
