"""End to end on CPU with the real SmolLM2-135M-Instruct: `drp serve` (transformers backend), `drp eval` with
resume, `drp compare` of two eval folders, `drp generate`, then Ctrl-C. One server for the whole module."""

import json
import signal
import socket
import subprocess
import sys
import time
from urllib.parse import urlparse

import pytest
from typer.testing import CliRunner

from drp.cli import app

# the module fixture is built once, on one pytest-xdist worker
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_serve_e2e")]


@pytest.fixture(scope="module")
def served(smollm2, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "server.log"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "drp.cli",
            "serve",
            "smollm2-135m-instruct",
            "--backend",
            "transformers",
            "--port",
            "0",
            "--log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.startswith("model:"):
            break
    ready = dict(line.split(": ", 1) for line in lines if ": " in line)
    if "ready" not in ready:
        process.kill()
        pytest.fail(f"drp serve did not get ready: {lines} {process.stderr.read()} {log.read_text()}")
    yield {"url": ready["ready"], "model": ready["model"], "process": process}

    # Ctrl-C: drp serve stops the server and exits 0, and nothing listens on the port any more.
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=90) == 0
    assert "stopped" in process.stderr.read()
    port = urlparse(ready["ready"]).port
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def _eval(served, out, max_tokens, *extra):
    return CliRunner().invoke(
        app,
        [
            "eval",
            "--model-url",
            served["url"],
            "--model",
            served["model"],
            "--benchmarks",
            "gsm8k",
            "--limit",
            "3",
            "--seeds",
            "2",
            "--max-tokens",
            str(max_tokens),
            "--out",
            str(out),
            "--quiet",
            *extra,
        ],
    )


def test_serve_prints_a_usable_base_url(served, smollm2):
    assert served["url"].startswith("http://127.0.0.1:") and served["url"].endswith("/v1")
    assert served["model"] == str(smollm2)


def test_eval_resume_and_compare(served, shared, tmp_path):
    long_run, short_run = tmp_path / "cap16", tmp_path / "cap8"
    first = _eval(served, long_run, 16)
    assert first.exit_code == 0, first.output
    samples = [json.loads(line) for line in open(long_run / "samples.jsonl")]
    assert len(samples) == 6 and not any(s["error"] for s in samples)
    assert all(0 < s["tokens"] <= 17 and s["finish_reason"] in ("stop", "length") for s in samples)
    # transformers serve samples only when told to (do_sample): two seeds must not all be the same text.
    by_problem = {}
    for s in samples:
        by_problem.setdefault(s["problem_id"], set()).add(s["response"])
    assert any(len(texts) > 1 for texts in by_problem.values())
    metrics = json.loads((long_run / "metrics" / "gsm8k.json").read_text())
    assert metrics["n_problems"] == 3 and metrics["seeds"] == [0, 1] and metrics["max_tokens"] == 16
    check = metrics["token_check"]
    # Same tokenizer on both sides: the server's usage agrees with our count (±1 for the end token).
    assert check["compared"] == 6 and check["mismatch_rate"] <= 1 / 6, samples
    assert json.loads((long_run / "config.json").read_text())["server_kind"] == "transformers"

    again = _eval(served, long_run, 16)
    assert again.exit_code == 0 and "0 samples to draw (6 already done)" in again.output
    assert len((long_run / "samples.jsonl").read_text().splitlines()) == 6

    second = _eval(served, short_run, 8)
    assert second.exit_code == 0, second.output
    report = tmp_path / "report"
    compared = CliRunner().invoke(app, ["compare", str(long_run), str(short_run), "--out", str(report)])
    assert compared.exit_code == 0, compared.output
    rows = json.loads((report / "comparison.json").read_text())["benchmarks"]["gsm8k"]["rows"]
    assert rows[1]["tokens"]["mean"] <= 9 < rows[0]["tokens"]["mean"]
    assert rows[1]["token_reduction"] > 0 and 0 <= rows[1]["wilcoxon_tokens"]["pvalue"] <= 1
    assert (report / "report.html").exists() and (report / "accuracy_vs_tokens.png").exists()


def test_generate_on_training_problems(served, shared, tmp_path):
    out = tmp_path / "traces.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "gsm8k:train",
            "--limit",
            "2",
            "--n",
            "2",
            "--keep",
            "all",
            "--model-url",
            served["url"],
            "--model",
            served["model"],
            "--max-tokens",
            "8",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    traces = [json.loads(line) for line in open(out)]
    assert [t["id"] for t in traces] == [
        "gsm8k_train_0000_s0",
        "gsm8k_train_0000_s1",
        "gsm8k_train_0001_s0",
        "gsm8k_train_0001_s1",
    ]
    assert all(t["response"] and t["question"] and t["gold_answer"] and t["model"] == served["model"] for t in traces)
    assert traces[0]["gold_answer"] == "72"  # Natalia's clips


def test_paper_protocol_on_the_real_model(served, shared, tmp_path):
    """`transformers serve` (transformers >= 5) has /v1/completions: one real raw, greedy sample, cut at `Q:`."""
    out = tmp_path / "paper"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--model-url",
            served["url"],
            "--model",
            served["model"],
            "--benchmarks",
            "gsm8k",
            "--limit",
            "1",
            "--protocol",
            "paper",
            "--max-tokens",
            "48",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    [sample] = [json.loads(line) for line in open(out / "samples.jsonl")]
    assert sample["prompt"].startswith("Q: Janet") and sample["prompt"].endswith("\nA: Let's think step by step.")
    assert sample["response"] and "Q:" not in sample["response"] and not sample["error"]
    assert 0 < sample["tokens"] <= 49 and {"strict_correct", "flexible_correct", "correct"} <= set(sample)
    metrics = json.loads((out / "metrics.json").read_text())["gsm8k"]
    assert metrics["protocol"] == "paper" and metrics["max_tokens"] == 48 and "lm_eval" in metrics
    # The pulled model has no train_questions.txt: the check is reported as not made, not as clean.
    assert metrics["contamination"]["checked"] is False
