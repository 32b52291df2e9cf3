"""Eval throughput: samples/s and output tokens/s of `drp eval` against a served student, per concurrency.

    python benchmarks/eval_throughput.py                       # starts `transformers serve` of SmolLM2 on CPU
    python benchmarks/eval_throughput.py --model-url URL --model NAME   # an endpoint that is already up
    python benchmarks/eval_throughput.py --server-arg=--continuous-batching

Greedy decoding (temperature 0) so that every concurrency level generates the same text and the same number of
tokens: only the scheduling differs. `transformers serve` answers one request at a time unless started with
continuous batching, so on it concurrency mostly overlaps HTTP and grading, not generation.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct", help="model to serve, or the served name")
    parser.add_argument("--model-url", default=None, help="use this endpoint instead of starting a server")
    parser.add_argument("--benchmark", default="gsm8k")
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--concurrency", default="1,4", help="comma-separated levels, repeats allowed")
    parser.add_argument("--server-arg", action="append", default=[], help="extra argument for the server")
    parser.add_argument("--prompt-template", default="r1-distill-qwen")
    parser.add_argument("--data-dir", type=Path, default=None, help="local benchmark files (default ../shared/data)")
    args = parser.parse_args()

    from drp.evals.evaluation import EvalSettings, run_eval
    from drp.models import resolve
    from drp.paths import shared_dir
    from drp.sampling.client import Decoding
    from drp.serving import ManagedServer, build_command, free_port

    server = None
    model = resolve(args.model)
    url = args.model_url
    with tempfile.TemporaryDirectory() as tmp:
        if url is None:
            command = build_command(model, "transformers", "127.0.0.1", free_port(), extra_args=args.server_arg)
            server = ManagedServer(command, Path(tmp) / "server.log")
            started = time.perf_counter()
            server.__enter__()
            print(f"server: {' '.join(command.argv[1:])} ready in {time.perf_counter() - started:.1f} s")
            url, model = command.base_url, command.model_name
        try:
            # Warm-up request, so the first level does not pay for lazy initialisation.
            _measure(
                url, model, args, 1, Path(tmp) / "warmup", EvalSettings, Decoding, run_eval, shared_dir(), problems=1
            )
            # A level may be listed twice (e.g. 1,4,1) to see how much the machine's load drifted meanwhile.
            rows = [
                _measure(
                    url,
                    model,
                    args,
                    level,
                    Path(tmp) / f"run{index}-c{level}",
                    EvalSettings,
                    Decoding,
                    run_eval,
                    shared_dir(),
                )
                for index, level in enumerate(int(c) for c in args.concurrency.split(","))
            ]
        finally:
            if server is not None:
                server.stop()
    print(
        f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; model {model}; {args.problems} "
        f"{args.benchmark} problems, greedy, max_tokens {args.max_tokens}"
    )
    print(
        f"{'concurrency':>11} {'samples':>7} {'wall s':>7} {'samples/s':>9} {'out tok':>7} {'out tok/s':>9} "
        f"{'mean latency s':>14}"
    )
    for row in rows:
        print(
            f"{row['concurrency']:>11} {row['samples']:>7} {row['wall_s']:>7.1f} {row['samples_per_s']:>9.3f} "
            f"{row['output_tokens']:>7} {row['output_tokens_per_s']:>9.1f} {row['mean_latency_s']:>14.2f}"
        )
    print(json.dumps(rows))


def _measure(url, model, args, concurrency, out, EvalSettings, Decoding, run_eval, shared, problems=None):
    from drp.endpoint import EndpointSettings
    from drp.jsonl import read_jsonl

    settings = EvalSettings(
        endpoint=EndpointSettings(url, model, timeout=1800.0, max_retries=0),
        benchmarks=[args.benchmark],
        out=out,
        seeds=1,
        limit=problems or args.problems,
        data_dir=args.data_dir or ((shared / "data") if shared else None),
        prompt_template=args.prompt_template,
        decoding=Decoding(0.0, 1.0, args.max_tokens),
        concurrency=concurrency,
        progress=False,
    )
    started = time.perf_counter()
    outcome = run_eval(settings, echo=lambda line: None)
    wall = time.perf_counter() - started
    samples = read_jsonl(out / "samples.jsonl")
    if outcome.failed:
        raise SystemExit(f"{outcome.failed} samples failed at concurrency {concurrency}")
    # Server-side counts when given (the tokens it generated), else our tokenizer's.
    tokens = sum(s.get("server_completion_tokens") or s["tokens"] for s in samples)
    return {
        "concurrency": concurrency,
        "samples": len(samples),
        "wall_s": wall,
        "samples_per_s": len(samples) / wall,
        "output_tokens": tokens,
        "output_tokens_per_s": tokens / wall,
        "mean_latency_s": sum(s["latency_s"] for s in samples) / len(samples),
    }


if __name__ == "__main__":
    main()
