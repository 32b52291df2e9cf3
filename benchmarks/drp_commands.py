"""Running real `drp` commands from a pipeline script: each one logged to a file, timed, and failing loudly;
`drp serve` kept up in the background for as long as a `with` block needs it.

Used by drp_effect.py, drp_effect_small.py and paper_gsm8k.py, which drive drp exactly as a user would from a
shell; the argument lists they share are here too.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


# One greedy answer per problem: how the pipelines score every student (`drp eval`).
ONE_GREEDY_SAMPLE = ["--seeds", "1", "--temperature", "0", "--top-p", "1"]


def flags(values: dict) -> list[str]:
    """{"--flag": value, …} as a command's arguments."""
    return [part for flag, value in values.items() for part in (flag, str(value))]


def training_args(args) -> list[str]:
    """The `drp distill` settings a pipeline's arms share (its --steps, --seed, --learning-rate, --max-length)."""
    return flags(
        {
            "--max_steps": args.steps,
            "--seed": args.seed,
            "--learning_rate": args.learning_rate,
            "--max_length": args.max_length,
        }
    )


def greedy_eval_args(args, url: str, model: str, out: Path) -> list[str]:
    """`drp eval` of a served student on --eval-benchmark's first --eval-problems, one greedy answer each."""
    return [
        "eval",
        *flags({"--model-url": url, "--model": model, "--benchmarks": args.eval_benchmark}),
        *flags({"--limit": args.eval_problems, "--max-tokens": args.max_tokens, "--concurrency": args.concurrency}),
        *ONE_GREEDY_SAMPLE,
        *flags({"--out": out}),
    ]


class StepFailed(SystemExit):
    pass


class DrpRunner:
    """Runs `python -m drp.cli ...` in `workdir`, output to logs/<name>.log, with DRP_RUNS_DIR inside workdir."""

    def __init__(self, workdir: Path, env: dict | None = None):
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs = self.workdir / "logs"
        self.logs.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "DRP_RUNS_DIR": str(self.workdir / "runs"),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            **(env or {}),
        }
        self.seconds: dict[str, float] = {}

    def command(self, *argv: str) -> list[str]:
        return [sys.executable, "-m", "drp.cli", *argv]

    def drp(self, *argv: str, log: str, ok: tuple[int, ...] = (0,)) -> int:
        """One drp command to completion; a status outside `ok` stops the script with the log's last lines."""
        path = self.logs / f"{log}.log"
        print(f"$ drp {shlex.join(argv)}", flush=True)
        started = time.perf_counter()
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("$ " + shlex.join(self.command(*argv)) + "\n")
            handle.flush()
            code = subprocess.run(
                self.command(*argv), stdout=handle, stderr=subprocess.STDOUT, env=self.env, cwd=self.workdir
            ).returncode
        self.seconds[log] = round(time.perf_counter() - started, 1)
        if code not in ok:
            raise StepFailed(f"drp {argv[0]} failed with exit status {code}; last lines of {path}:\n{tail(path)}")
        return code

    @contextmanager
    def served(self, model: str, *serve_args: str, log: str) -> Iterator[tuple[str, str]]:
        """`drp serve MODEL ...` in the background; yields (base URL, model name) once it answers, stops it after."""
        argv = ["serve", model, "--port", "0", "--log", str(self.logs / f"{log}.log"), *serve_args]
        print(f"$ drp {shlex.join(argv)} &", flush=True)
        started = time.perf_counter()
        server = subprocess.Popen(
            self.command(*argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=self.env,
            cwd=self.workdir,
            start_new_session=True,
        )
        try:
            url = name = None
            for line in server.stdout:  # `drp serve` prints "ready: URL", then "model: NAME"
                if line.startswith("ready: "):
                    url = line.split(" ", 1)[1].strip()
                elif line.startswith("model: "):
                    name = line.split(" ", 1)[1].strip()
                    break
            if not (url and name):
                raise StepFailed(
                    f"drp serve {model} did not start; last lines of its log:\n{tail(self.logs / f'{log}.log')}"
                )
            self.seconds[f"{log}-start"] = round(time.perf_counter() - started, 1)
            yield url, name
        finally:
            stop(server)


def stop(server: subprocess.Popen, grace: float = 90.0) -> None:
    """SIGINT, then SIGTERM: on either, `drp serve` stops its own server (in its own session) in order."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if server.poll() is not None:
            return
        os.killpg(server.pid, sig)
        try:
            server.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            continue


def tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
