"""End to end with a real model: SmolLM2-135M-Instruct served by `transformers serve` on CPU as the teacher
of the skill-aware policy. Its replies are poor; the point is that every call is recorded, with its raw reply
and token counts, and that every trace ends in a terminal state."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import EXAMPLES, db_of, drp, traces_of

from drp.testing.scripted_teacher import free_port

# the module fixture is built once, on one pytest-xdist worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_e2e_smollm2")]


@pytest.fixture(scope="module")
def served_smollm2(smollm2: Path):
    port = free_port()
    executable = shutil.which("transformers") or str(Path(sys.executable).parent / "transformers")
    process = subprocess.Popen(
        [executable, "serve", str(smollm2), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2)
            break
        except OSError:
            assert process.poll() is None, "transformers serve exited"
            time.sleep(1)
    else:
        process.kill()
        pytest.fail("transformers serve did not answer within 180 s")
    yield url, str(smollm2)
    process.terminate()
    process.wait(timeout=30)


def test_skill_aware_with_a_real_tiny_teacher(served_smollm2):
    url, model = served_smollm2
    result = drp(
        "run",
        EXAMPLES,
        "--policy",
        "skill-aware",
        "--teacher-url",
        url,
        "--teacher-model",
        model,
        "--run-id",
        "smol",
        "--limit",
        "1",
        "--concurrency",
        "1",
        "--quiet",
        "--teacher-timeout",
        "300",
        "--set",
        "parse_retries=1",
        "--set",
        "max_retries=0",
        "--set",
        "agents.segmenter.max_tokens=128",
        "--set",
        "agents.classifier.max_tokens=128",
        "--set",
        "agents.pruner.max_tokens=160",
    )
    assert result.exit_code in (0, 1), result.output  # 1 when the tiny model's replies never parse
    traces = traces_of("smol")
    limited = [t for t in traces.values() if t["line"] <= 1]
    assert limited and all(t["status"] in ("accepted", "rejected", "failed") for t in limited)
    calls = list(db_of("smol").query("select * from calls where model = ?", [model]))
    assert calls, "the real model was called"
    for call in calls:
        assert call["raw_output"] is not None and call["error"] != "teacher_error"
        assert call["input_tokens"] > 0 and call["output_tokens"] > 0
        assert json.loads(call["messages"])[0]["role"] == "system"
        # a call either parsed into a result or says why it could not be used
        assert (call["parsed"] is not None) != (call["error"] is not None) or call["error"]
    for trace in limited:
        if trace["status"] == "failed":
            assert trace["reason"].split(":")[0] in ("segmenter_unusable", "classifier_unusable", "pruner_unusable")
