"""The wheels the prepared GPU scripts carry: pip's closure for Python 3.12 minus the GPU image, checked offline.

Needs PyPI (skips without it) and downloads ~90 MiB the first time (pip's cache serves later runs): slow.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
OFFLINE = (
    "Could not fetch URL",
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Network is unreachable",
)

# DESIGN.md, "Environment facts": what the GPU machines lack, as seen there.
MISSING_FOR_DISTILL = {"trl", "datasets", "dill", "multiprocess"}
MISSING_FOR_EVAL = {
    "pydantic",
    "fastapi",
    "uvicorn",
    "openai",
    "httpx2",
    "httpcore2",
    "h11",
    "truststore",
    "anyio",
    "idna",
    "opentelemetry-api",
    "math-verify",
}


def run(command: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    if done.returncode != 0 and any(sign in done.stderr + done.stdout for sign in OFFLINE):
        pytest.skip("PyPI is not reachable from here")
    return done


def wheels(folder: Path) -> dict[str, tuple[int, ...]]:
    """Normalized name → version numbers of every wheel in the folder."""
    found = {}
    for wheel in folder.glob("*.whl"):
        name, version = wheel.name.split("-")[:2]
        found[re.sub(r"[-_.]+", "-", name).lower()] = tuple(int(p) for p in re.findall(r"\d+", version)[:3])
    return found


def test_distill_wheels_install_offline_for_python_312(tmp_path):
    dest = tmp_path / "gpu-wheels"
    done = run(["bash", "benchmarks/gpu_distill_smoke.sh", "--prepare-wheels", str(dest)])
    assert done.returncode == 0, done.stderr
    assert "checked offline" in done.stdout
    found = wheels(dest)
    assert MISSING_FOR_DISTILL <= set(found)
    assert not {"torch", "transformers", "accelerate", "peft", "pyarrow"} & set(found)  # the image has them
    assert any(w.name.startswith("multiprocess-") and "py312" in w.name for w in dest.glob("*.whl"))


def test_eval_wheels_install_offline_and_the_check_catches_a_gap(tmp_path):
    dest = tmp_path / "whl"
    done = run([sys.executable, "benchmarks/gpu_wheels.py", "prepare", str(dest), "--for", "eval"])
    assert done.returncode == 0, done.stderr
    found = wheels(dest)
    assert MISSING_FOR_EVAL <= set(found), MISSING_FOR_EVAL - set(found)
    assert found["anyio"] >= (4, 10) and found["idna"] >= (3, 18)
    # The offline check is a real resolution: take one transitive dependency away and it fails, naming it.
    next(dest.glob("h11-*.whl")).unlink()
    check = run([sys.executable, "benchmarks/gpu_wheels.py", "check", str(dest)])
    assert check.returncode != 0 and "h11" in check.stdout + check.stderr
