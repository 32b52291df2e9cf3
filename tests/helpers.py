"""Small helpers shared by the pruning-graph tests."""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drp.cli import app
from drp.paths import run_dir
from drp.plain_sqlite_utils import sqlite_utils

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "traces.jsonl"

# The tests that import torch, transformers, TRL or datasets into their pytest-xdist worker (training recipes,
# chat-template rendering, Hugging Face datasets), kept on one worker: importing them costs each worker ~8 s.
TORCH_WORKER = pytest.mark.xdist_group("torch")


def drp(*args: str):
    """Invoke the CLI in-process; returns typer's Result (exit_code, output)."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def db_of(run_id: str) -> sqlite_utils.Database:
    return sqlite_utils.Database(run_dir(run_id) / "drp.db")


def traces_of(run_id: str) -> dict[str, dict]:
    return {row["id"]: row for row in db_of(run_id).query("select * from traces")}


def pruned_of(run_id: str) -> list[dict]:
    return [json.loads(line) for line in (run_dir(run_id) / "pruned.jsonl").read_text().splitlines()]


def example_records() -> list[dict]:
    return [json.loads(line) for line in EXAMPLES.read_text().splitlines()]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


DRP = [sys.executable, "-m", "drp.cli"]
BATCH_MODE = ("--teacher-mode", "batch", "--batch-poll-seconds", "0.05")


def skill_aware_run(url: str, run_id: str, *extra: str, model: str = "m") -> tuple:
    """The arguments of `drp run` over the example traces with `skill-aware` against the teacher at `url`."""
    teacher = ("--teacher-url", url, "--teacher-model", model)
    return ("run", EXAMPLES, "--policy", "skill-aware", *teacher, "--run-id", run_id, "--quiet", *extra)


def eval_args(
    url: str, out, data_dir, tokenizer, *extra: str, model: str = "student", benchmarks: str = "gsm8k"
) -> list:
    """The arguments of a quiet `drp eval` of `model` at `url` on `benchmarks` from the problems in `data_dir`."""
    where = ("--benchmarks", benchmarks, "--data-dir", str(data_dir), "--out", str(out), "--tokenizer", str(tokenizer))
    return ["eval", "--model-url", url, "--model", model, *where, "--quiet", *extra]


def drp_process(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the CLI as a real process (its own interpreter, signals, exit status and stderr)."""
    return subprocess.run(
        [*DRP, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=os.environ.copy()
    )


def copies_of_examples(path: Path, copies: int) -> Path:
    """The example traces repeated `copies` times under new ids (8 per copy, 6 of them accepted)."""
    return write_jsonl(path, [{**r, "id": f"{r['id']}-{n}"} for n in range(copies) for r in example_records()])


def one_line_error(text: str) -> bool:
    """What a refusal prints: a single `error: ...` line, no traceback."""
    lines = [line for line in text.splitlines() if line.strip()]
    return "Traceback" not in text and len(lines) == 1 and lines[0].startswith("error: ")


def kill_once_finished(process: subprocess.Popen, run_id: str, finished: int, within: float = 120) -> None:
    """SIGKILL a `drp run` process once its run has finished `finished` traces (or it exited, or `within` s passed).

    The database is read only once it exists: opening it first would create an empty file under the run."""
    db_path = run_dir(run_id) / "drp.db"
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and process.poll() is None:
        done = 0
        if db_path.exists():
            try:
                done = db_of(run_id).execute("select count(*) from traces where status != 'pending'").fetchone()[0]
            except Exception:  # noqa: BLE001 - the schema is not written yet
                done = 0
        if done >= finished:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()


def gone(pid: int, within: float = 10) -> bool:
    """Whether process `pid` has exited within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def gsm8k_data_dir(root: Path, questions: dict[str, str]) -> Path:
    """A data folder whose gsm8k/test.jsonl holds these question → gold pairs, as `drp eval --data-dir` reads it."""
    (root / "gsm8k").mkdir(parents=True)
    with open(root / "gsm8k" / "test.jsonl", "w") as handle:
        for question, gold in questions.items():
            handle.write(json.dumps({"question": question, "answer": f"Work.\n#### {gold}"}) + "\n")
    return root


def drp_within(limit: float, *args: str):
    """`drp(*args)` in-process, under a deadline: a run still going after `limit` seconds ends this pytest process
    with every thread's traceback, so a hang fails its test as a real process under a timeout would, without the
    seconds a fresh interpreter spends importing (torch, the tokenizer, the openai client) on every run."""
    faulthandler.dump_traceback_later(limit, exit=True, file=sys.__stderr__)
    try:
        return drp(*args)
    finally:
        faulthandler.cancel_dump_traceback_later()
