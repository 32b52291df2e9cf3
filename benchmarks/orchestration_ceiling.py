"""What the orchestration benchmark's harness allows at best: the same scripted teacher, process layout and
traces, but each trace is only its recorded teacher requests posted one after another with bare aiohttp (no
drp, LangGraph, langchain-openai, openai SDK or tokenizer). Efficiency is computed as in orchestration.py.

    python benchmarks/orchestration_ceiling.py [--traces 400] [--concurrency 32] [--latency 0.1] [--workers 2]

Read beside `orchestration.py` with the same arguments: the gap between the two is what drp's own stack costs."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sqlite3
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from orchestration import _serve, usable_examples  # noqa: E402

from drp.testing.scripted_teacher import ScriptedTeacher  # noqa: E402
from drp.testing.skill_aware_responder import sensible  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    traces = _recorded_requests()
    ready, stop = multiprocessing.Queue(), multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(args.latency, ready, stop), daemon=True)
    server.start()
    url = ready.get(timeout=60)
    ids = list(range(args.traces))
    context = multiprocessing.get_context("fork")
    per_worker = max(1, -(-args.concurrency // args.workers))
    cpu_started, started = _children_cpu(), time.perf_counter()
    workers = [
        context.Process(target=_replay, args=(url, traces, ids[index :: args.workers], per_worker))
        for index in range(args.workers)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    cpu = _children_cpu() - cpu_started
    stop.set()
    requests, _ = ready.get(timeout=60)
    server.join(timeout=10)
    calls_per_trace = requests / args.traces
    ideal = args.concurrency / (calls_per_trace * args.latency)
    achieved = args.traces / seconds
    print(
        f"{args.traces} traces, {requests} teacher calls ({calls_per_trace:.2f}/trace), latency "
        f"{args.latency * 1000:.0f} ms, concurrency {args.concurrency}, workers {args.workers}: bare replay"
    )
    print(
        f"achieved {achieved:.1f} traces/s; ideal {ideal:.1f} traces/s; efficiency {achieved / ideal:.3f} "
        "(the harness's ceiling)"
    )
    print(f"client CPU {cpu * 1000 / args.traces:.1f} ms per trace; wall {seconds:.2f}s")


def _recorded_requests() -> list[list[bytes]]:
    """Each benchmark example's teacher requests (bodies, in order), from one drp run at concurrency 1."""
    from drp.paths import runs_dir
    from drp.run_config import RunConfig
    from drp.run_place import RunPlace
    from drp.runner import run
    from drp.store import DB_NAME

    workdir = Path(tempfile.mkdtemp(prefix="drp-ceiling-"))
    os.environ["DRP_RUNS_DIR"] = str(workdir / "runs")
    source = workdir / "traces.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in usable_examples()))
    with ScriptedTeacher(sensible) as teacher:
        summary = run(
            RunConfig.from_options(
                {
                    "source": str(source),
                    "policy": "skill-aware",
                    "teacher_urls": [teacher.url],
                    "teacher_model": "scripted",
                    "concurrency": 1,
                }
            ),
            RunPlace.under(runs_dir(), "ceiling"),
            progress=False,
        )
        bodies = [json.dumps(request).encode() for request in teacher.requests]
    with sqlite3.connect(summary.path / DB_NAME) as db:
        per_trace = [
            n for (n,) in db.execute("SELECT count(*) FROM calls WHERE llm = 1 GROUP BY trace_id ORDER BY min(id)")
        ]
    traces, start = [], 0
    for count in per_trace:  # at concurrency 1 a trace's requests are consecutive
        traces.append(bodies[start : start + count])
        start += count
    return traces


def _replay(url: str, traces: list[list[bytes]], ids: list[int], concurrency: int) -> None:
    import aiohttp

    async def replay_all():
        queue = list(reversed(ids))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def worker():
                while queue:
                    for body in traces[queue.pop() % len(traces)]:
                        async with session.post(
                            f"{url}/chat/completions", data=body, headers={"content-type": "application/json"}
                        ) as response:
                            json.loads(await response.read())

            await asyncio.gather(*(worker() for _ in range(concurrency)))

    asyncio.run(replay_all())


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


if __name__ == "__main__":
    main()
