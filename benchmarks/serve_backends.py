"""Tokens per second of `drp serve`'s CPU backends on one student, several requests in flight.

    python benchmarks/serve_backends.py [--model qwen2.5-coder-0.5b-instruct] [--backends transformers,llama.cpp]
                                        [--requests 8] [--max-tokens 128] [--out FILE.json]
                                        [--transformers-args "--continuous-batching --cb-max-memory-percent 0.1"]

Each backend is started as `drp serve` starts it (drp.serving; transformers with continuous batching, its best
setting for requests in flight, as benchmarks/drp_effect_small.py serves it; llama.cpp with its defaults), sent one
short warm-up request, then the first `--requests` GSM8K train questions at once (chat, greedy, `--max-tokens`
each); tokens/s = completion tokens (as the server counts them) / wall time from the first request sent to the last
answer. The load average is printed with each figure: the machine is shared. Needs the pulled model, and for
llama.cpp its build (scripts/build_llama_server.sh); the GSM8K questions come from ../shared/data/gsm8k/train.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from drp.models import resolve  # noqa: E402
from drp.paths import shared_dir  # noqa: E402
from drp.serving import ManagedServer, build_command, free_port  # noqa: E402


def questions(count: int) -> list[str]:
    shared = shared_dir()
    if shared is None:
        sys.exit("../shared is absent: the GSM8K questions come from shared/data/gsm8k/train.jsonl")
    with open(shared / "data" / "gsm8k" / "train.jsonl") as handle:
        return [json.loads(next(handle))["question"] for _ in range(count)]


def measure(backend: str, model: str, prompts: list[str], max_tokens: int, log: Path, extra: list[str]) -> dict:
    import httpx

    command = build_command(model, backend, "127.0.0.1", free_port(), extra_args=extra)
    started = time.perf_counter()
    with ManagedServer(command, log) as server:
        ready = time.perf_counter() - started
        url = f"{command.base_url}/chat/completions"

        def ask(question: str, tokens: int) -> dict:
            reply = httpx.post(
                url,
                timeout=3600,
                json={
                    "model": command.model_name,
                    "temperature": 0,
                    "max_tokens": tokens,
                    "messages": [
                        {
                            "role": "user",
                            "content": question + "\nPlease reason step by step, and put your final "
                            "answer within \\boxed{}.",
                        }
                    ],
                },
            )
            reply.raise_for_status()
            return reply.json()["usage"]

        ask("1 + 1 =", 1)  # warm-up: the first request of a fresh server pays one-off costs
        load_before = os.getloadavg()
        sent = time.perf_counter()
        with ThreadPoolExecutor(len(prompts)) as pool:
            usages = list(pool.map(lambda q: ask(q, max_tokens), prompts))
        wall = time.perf_counter() - sent
        pid = server.process.pid
    tokens = sum(u["completion_tokens"] for u in usages)
    return {
        "backend": backend,
        "argv": command.argv,
        "server_pid": pid,
        "ready_seconds": round(ready, 1),
        "requests": len(prompts),
        "completion_tokens": tokens,
        "wall_seconds": round(wall, 1),
        "tokens_per_second": round(tokens / wall, 2),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--backends", default="transformers,llama.cpp")
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--transformers-args", default="--continuous-batching --cb-max-memory-percent 0.1")
    parser.add_argument("--llama-args", default="", help="more llama-server arguments, e.g. '-t 1'")
    args = parser.parse_args()
    model = resolve(args.model)
    prompts = questions(args.requests)
    results = []
    with tempfile.TemporaryDirectory() as logs:
        for backend in args.backends.split(","):
            extra = (args.transformers_args if backend == "transformers" else args.llama_args).split()
            result = measure(backend, model, prompts, args.max_tokens, Path(logs) / f"{backend}.log", extra)
            results.append(result)
            print(
                f"{backend:12s} {result['tokens_per_second']:7.2f} tokens/s  ({result['completion_tokens']} tokens, "
                f"{result['requests']} requests in flight, {result['wall_seconds']} s; ready after "
                f"{result['ready_seconds']} s; load average {result['load_before'][0]} -> "
                f"{result['load_after'][0]} on {os.cpu_count()} cores)",
                flush=True,
            )
    if args.out:
        args.out.write_text(
            json.dumps({"model": model, "max_tokens": args.max_tokens, "results": results}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
