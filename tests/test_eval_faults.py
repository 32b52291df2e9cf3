"""`drp eval` against a real loopback HTTP server that scripts faults: down, 500s mid-run, kills, bad input."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import DRP, eval_args, gsm8k_data_dir
from typer.testing import CliRunner

from drp.cli import app
from drp.sampling.client import Completion, Decoding
from drp.sampling.pool import Task, run_tasks
from drp.testing.scripted_teacher import Error, Raw, ScriptedTeacher, Sequence, Text, refused_url

QUESTIONS = {"What is 2+3?": "5", "What is 10-4?": "6", "What is 3*3?": "9", "What is 8/2?": "4"}


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return gsm8k_data_dir(tmp_path / "data", QUESTIONS)


def solver(request: dict) -> Text:
    """Right on every problem but 3*3 (wrong) and 8/2 (no answer at all)."""
    question = request["messages"][-1]["content"].split("\n")[0]
    if question == "What is 3*3?":
        return Text("Thinking.\n</think>\n\n\\boxed{10}", completion_tokens=9)
    if question == "What is 8/2?":
        return Text("I cannot do this one.", completion_tokens=6)
    return Text(f"Thinking.\n</think>\n\n\\boxed{{{QUESTIONS[question]}}}", completion_tokens=9)


def run_eval(url, out, data_dir, tokenizer, *extra):
    args = eval_args(url, out, data_dir, tokenizer, "--retries", "0", "--max-tokens", "50", *extra)
    return CliRunner().invoke(app, args)


def test_scores_seeds_lists_unanswered_and_cross_checks_tokens(tmp_path, data_dir, smollm2):
    out = tmp_path / "eval"
    with ScriptedTeacher(solver, models=("student",)) as teacher:
        result = run_eval(teacher.url, out, data_dir, smollm2, "--seeds", "2", "--extra-body", '{"top_k": 20}')
    assert result.exit_code == 0, result.output
    requests = teacher.requests
    assert len(requests) == 8
    assert sorted(r["seed"] for r in requests) == [0, 0, 0, 0, 1, 1, 1, 1]
    assert all(r["max_tokens"] == 50 and r["temperature"] == 0.6 and r["top_k"] == 20 for r in requests)
    assert "generation_config" not in requests[0]  # only transformers serve needs the do_sample switch
    assert {
        "role": "user",
        "content": "What is 2+3?\nPlease reason step by step, and put your final answer within \\boxed{}.",
    } in [r["messages"][0] for r in requests]
    assert all(len(r["messages"]) == 1 for r in requests)  # no system prompt for R1-Distill-Qwen
    samples = [json.loads(line) for line in open(out / "samples.jsonl")]
    assert len(samples) == 8 and {s["problem_id"] for s in samples} == {f"gsm8k_000{i}" for i in range(4)}
    metrics = json.loads((out / "metrics" / "gsm8k.json").read_text())
    assert metrics["accuracy"]["mean"] == 0.5 and metrics["accuracy"]["std"] == 0.0
    assert metrics["per_seed"][0]["correct"] == 2
    assert sorted(metrics["no_answer"], key=str) == [
        {"problem_id": "gsm8k_0003", "seed": 0},
        {"problem_id": "gsm8k_0003", "seed": 1},
    ]
    assert metrics["complete"] and metrics["errors"] == []
    # The scripted usage numbers (9 and 6) are not what SmolLM2's tokenizer counts for these texts.
    check = metrics["token_check"]
    assert check["compared"] == 8 and check["mismatch_rate"] is not None
    counted = {s["tokens"] for s in samples}
    assert check["mismatches"] == sum(abs(s["tokens"] - s["server_completion_tokens"]) > 1 for s in samples)
    assert counted and all(isinstance(t, int) and t > 0 for t in counted)
    assert json.loads((out / "config.json").read_text())["decoding"]["max_tokens"] == 50
    assert "gsm8k" in result.output and "50.0%" in result.output


def test_length_cap_is_reported(tmp_path, data_dir, smollm2):
    out = tmp_path / "eval"
    with ScriptedTeacher(
        lambda r: Text("Let me think about this for a very", finish_reason="length"), models=("student",)
    ) as teacher:
        result = run_eval(teacher.url, out, data_dir, smollm2, "--seeds", "1")
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())["gsm8k"]
    assert metrics["length_capped"] == {"count": 4, "rate": 1.0}
    assert metrics["accuracy"]["mean"] == 0.0


def test_split_reasoning_is_put_back_in_front(tmp_path, data_dir, smollm2):
    """vLLM with a reasoning parser returns the thinking in reasoning_content."""
    body = json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": "student",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {
                        "role": "assistant",
                        "content": "So \\boxed{5}.",
                        "reasoning_content": "2 plus 3 is 5.",
                    },
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 12, "total_tokens": 15},
        }
    )
    with ScriptedTeacher(lambda r: Raw(body), models=("student",)) as teacher:
        result = run_eval(teacher.url, tmp_path / "eval", data_dir, smollm2, "--seeds", "1", "--limit", "1")
    assert result.exit_code == 0, result.output
    sample = json.loads((tmp_path / "eval" / "samples.jsonl").read_text())
    assert sample["response"] == "2 plus 3 is 5.\n</think>\n\nSo \\boxed{5}."
    assert sample["correct"] is True


def test_endpoint_down_is_a_clear_exit_status(tmp_path, data_dir, smollm2):
    result = run_eval(refused_url(), tmp_path / "eval", data_dir, smollm2)
    assert result.exit_code == 3
    assert "is not answering" in result.output and "drp serve" in result.output
    assert not (tmp_path / "eval" / "samples.jsonl").exists()


def test_errors_mid_run_are_recorded_then_retried_on_resume(tmp_path, data_dir, smollm2):
    out = tmp_path / "eval"
    failing = Sequence(*(solver({"messages": [{"content": q}]}) for q in list(QUESTIONS)[:3]), Error(500))
    # One request at a time so the script's order is the problems' order.
    with ScriptedTeacher(failing, models=("student",)) as teacher:
        result = run_eval(
            teacher.url, out, data_dir, smollm2, "--seeds", "2", "--concurrency", "1", "--max-consecutive-errors", "0"
        )
    assert result.exit_code == 1, result.output
    assert "5 samples failed" in result.output and "rerun" in result.output
    lines = [json.loads(line) for line in open(out / "samples.jsonl")]
    assert len(lines) == 8 and sum(bool(s["error"]) for s in lines) == 5
    assert all("HTTP 500" in s["error"] for s in lines if s["error"])
    metrics = json.loads((out / "metrics.json").read_text())["gsm8k"]
    assert not metrics["complete"] and len(metrics["errors"]) == 5 and metrics["samples"] == 3

    with ScriptedTeacher(solver, models=("student",)) as healthy:
        again = run_eval(healthy.url, out, data_dir, smollm2, "--seeds", "2", "--concurrency", "1")
    assert again.exit_code == 0, again.output
    assert len(healthy.requests) == 5  # only the failed samples were redone
    metrics = json.loads((out / "metrics.json").read_text())["gsm8k"]
    assert metrics["complete"] and metrics["samples"] == 8 and metrics["errors"] == []


def test_too_many_errors_in_a_row_stop_the_run(tmp_path, data_dir, smollm2):
    with ScriptedTeacher(lambda r: Error(503), models=("student",)) as teacher:
        result = run_eval(
            teacher.url,
            tmp_path / "eval",
            data_dir,
            smollm2,
            "--seeds",
            "3",
            "--concurrency",
            "1",
            "--max-consecutive-errors",
            "3",
        )
    assert result.exit_code == 1
    assert "stopped early: 3 requests in a row failed" in result.output
    # Of 12 samples, the 3 failures plus at most the one already in flight were sent, and all were recorded.
    assert 3 <= len(teacher.requests) <= 4
    assert len((tmp_path / "eval" / "samples.jsonl").read_text().splitlines()) == len(teacher.requests)


def test_a_busy_writer_does_not_let_requests_run_past_the_error_limit():
    """The errors in a row are counted as requests end, not as the calling thread gets to them: a slow samples
    file must not let the workers send on meanwhile."""
    sent = []

    class Failing:
        def complete(self, messages, decoding, seed):
            sent.append(seed)
            return Completion(error="HTTP 503")

    def slow_writer(task, completion):
        time.sleep(0.05)

    tasks = [Task(key=(n,), messages=[], seed=n) for n in range(12)]
    for concurrency in (1, 3):
        sent.clear()
        outcome = run_tasks(tasks, Failing(), Decoding(0.0, 1.0, 8), concurrency, slow_writer, 3)
        assert outcome.aborted and outcome.aborted.startswith("3 requests in a row failed")
        # the third error stops every worker: only requests already on their way when it ended go out after it
        assert 3 <= len(sent) <= 3 + concurrency - 1, (concurrency, sent)
        assert outcome.failed == len(sent)  # and each one sent was handed to the writer


def test_killed_run_resumes_without_redoing_finished_samples(tmp_path, data_dir, smollm2):
    out = tmp_path / "eval"
    with ScriptedTeacher(solver, latency=0.3, models=("student",)) as teacher:
        settings = ("--seeds", "5", "--concurrency", "2", "--max-tokens", "50")
        command = [*DRP, *eval_args(teacher.url, out, data_dir, smollm2, *settings)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples = out / "samples.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if samples.exists() and samples.read_text().count("\n") >= 4:
                break
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    survived = [line for line in samples.read_text().splitlines() if line.strip()]
    finished = {(r["seed"], r["problem_id"]) for r in map(json.loads, survived)}
    assert 4 <= len(finished) < 20

    with ScriptedTeacher(solver, models=("student",)) as again:
        result = run_eval(again.url, out, data_dir, smollm2, "--seeds", "5")
    assert result.exit_code == 0, result.output
    redone = {(r["seed"], r["messages"][-1]["content"].split("\n")[0]) for r in again.requests}
    assert len(again.requests) == 20 - len(finished)
    by_question = {q: f"gsm8k_000{i}" for i, q in enumerate(QUESTIONS)}
    assert not {(seed, by_question[q]) for seed, q in redone} & finished
    assert json.loads((out / "metrics.json").read_text())["gsm8k"]["samples"] == 20


def test_a_line_cut_by_a_kill_is_redone(tmp_path, data_dir, smollm2):
    out = tmp_path / "eval"
    with ScriptedTeacher(solver, models=("student",)) as teacher:
        assert run_eval(teacher.url, out, data_dir, smollm2, "--seeds", "1").exit_code == 0
    samples = out / "samples.jsonl"
    lines = samples.read_text().splitlines()
    samples.write_text("\n".join(lines[:3]) + "\n" + lines[3][: len(lines[3]) // 2])  # half-written last line
    with ScriptedTeacher(solver, models=("student",)) as again:
        result = run_eval(again.url, out, data_dir, smollm2, "--seeds", "1")
    assert result.exit_code == 0, result.output
    assert len(again.requests) == 1
    assert json.loads((out / "metrics.json").read_text())["gsm8k"]["samples"] == 4


def test_resume_with_other_decoding_is_refused(tmp_path, data_dir, smollm2):
    out = tmp_path / "eval"
    with ScriptedTeacher(solver, models=("student",)) as teacher:
        assert run_eval(teacher.url, out, data_dir, smollm2, "--seeds", "1").exit_code == 0
        result = run_eval(teacher.url, out, data_dir, smollm2, "--seeds", "1", "--temperature", "1.0")
    assert result.exit_code == 2
    assert "different decoding" in result.output


@pytest.mark.parametrize(
    "benchmarks, expected",
    [
        ("gsm8k,nope", "unknown benchmark 'nope'; known: gsm8k, math500, aime24, amc23"),
        ("math500", "does not exist"),
    ],
)
def test_bad_benchmarks_exit_2(tmp_path, data_dir, smollm2, benchmarks, expected):
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--model-url",
            refused_url(),
            "--model",
            "m",
            "--benchmarks",
            benchmarks,
            "--data-dir",
            str(data_dir),
            "--source",
            "local",
            "--out",
            str(tmp_path / "e"),
            "--tokenizer",
            str(smollm2),
        ],
    )
    assert result.exit_code == 2 and expected in result.output


def test_malformed_data_file_exit_2(tmp_path, data_dir, smollm2):
    (data_dir / "gsm8k" / "test.jsonl").write_text('{"question": "What is 2+3?", "answer": "#### 5"}\n{oops\n')
    result = run_eval(refused_url(), tmp_path / "eval", data_dir, smollm2)
    assert result.exit_code == 2
    assert "test.jsonl:2: not valid JSON" in result.output


def test_template_without_placeholder_exit_2(tmp_path, data_dir, smollm2):
    result = run_eval(refused_url(), tmp_path / "eval", data_dir, smollm2, "--prompt-template", "Solve it.")
    assert result.exit_code == 2 and "{problem}" in result.output


def test_api_key_comes_from_the_environment_and_is_never_written(tmp_path, data_dir, smollm2, monkeypatch):
    monkeypatch.setenv("STUDENT_KEY", "sk-test-do-not-store-4242")
    out = tmp_path / "eval"
    with ScriptedTeacher(solver, models=("student",)) as teacher:
        result = run_eval(teacher.url, out, data_dir, smollm2, "--seeds", "1", "--api-key-env", "STUDENT_KEY")
    assert result.exit_code == 0, result.output
    for path in out.rglob("*"):
        if path.is_file():
            assert "sk-test-do-not-store-4242" not in path.read_text()
    assert "sk-test-do-not-store-4242" not in result.output
    assert CliRunner().invoke(app, ["eval", "--api-key", "x"]).exit_code == 2  # no such flag


def test_credentials_in_the_model_url_are_never_written(tmp_path, data_dir, smollm2):
    out = tmp_path / "eval"
    with ScriptedTeacher(solver, models=("student",)) as teacher:
        url = teacher.url.replace("http://", "http://evaluser-31f:evalpass-8d2@")
        result = run_eval(url, out, data_dir, smollm2, "--seeds", "1")
    assert result.exit_code == 0, result.output
    assert "http://***@127.0.0.1:" in json.loads((out / "config.json").read_text())["model_url"]
    for text in [result.output, *(p.read_text() for p in out.rglob("*") if p.is_file())]:
        assert "evaluser-31f" not in text and "evalpass-8d2" not in text
    down = run_eval(
        refused_url().replace("http://", "http://evaluser-31f:evalpass-8d2@"), tmp_path / "down", data_dir, smollm2
    )
    assert down.exit_code != 0 and "is not answering" in down.output and "evalpass-8d2" not in down.output
