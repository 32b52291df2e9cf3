"""Orchestration efficiency of the LLM graph: traces through `skill-aware` against the scripted loopback teacher
with a fixed latency per call. Efficiency = achieved traces/s ÷ ideal (C / (calls per trace × latency)).

    python benchmarks/orchestration.py [--traces 200] [--concurrency 32] [--latency 0.1] [--workers 1]
                                       [--variant NAME | --compare NAME,NAME,… [--rounds 2]]

Variants (never how drp runs, except `drp`; the others bound what a layer costs):
  drp                    drp as it is (the default)
  -tokens                token counts replaced by len(text) // 4
  -tokens-client         also the teacher call as one bare aiohttp POST (no langchain-openai, no openai SDK)
  -tokens-client-graph   also the same nodes and routing run by a plain loop (no LangGraph)
  ceiling                each trace only its recorded teacher requests, posted one after another with bare aiohttp
                         (no drp at all): what the harness itself allows at best
`--compare` runs the variants named (default: all) in fresh processes, alternated over `--rounds`, so the host's
load falls on all alike, and prints each one's efficiency and orchestrator CPU per trace.

Target (issue 2): efficiency ≥ 0.85 at concurrency 32 and 100 ms per call. Also prints peak memory."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from drp.testing.scripted_teacher import ScriptedTeacher  # noqa: E402
from drp.testing.skill_aware_responder import sensible  # noqa: E402

# Variant → the layers it replaces by bare stand-ins (see _stub); `ceiling` replaces all of drp (see _ceiling).
VARIANTS = {
    "drp": (),
    "-tokens": ("tokens",),
    "-tokens-client": ("tokens", "client"),
    "-tokens-client-graph": ("tokens", "client", "graph"),
    "ceiling": (),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=1, help="orchestrator processes (drp run --workers)")
    parser.add_argument("--variant", choices=VARIANTS, default="drp")
    parser.add_argument("--compare", nargs="?", const=",".join(VARIANTS), help="variants to run side by side")
    parser.add_argument("--rounds", type=int, default=2, help="with --compare")
    args = parser.parse_args()
    if args.compare:
        _compare(args)
    elif args.variant == "ceiling":
        _ceiling(args)
    else:
        _drp(args, VARIANTS[args.variant])


def _drp(args, stubbed: tuple[str, ...]) -> None:
    from drp.run_config import RunConfig
    from drp.run_place import RunPlace
    from drp.runner import run

    _stub(set(stubbed))
    workdir = Path(tempfile.mkdtemp(prefix="drp-orch-"))
    source = workdir / "traces.jsonl"
    source.write_text("".join(json.dumps(trace) + "\n" for trace in distinct_copies(usable_examples(), args.traces)))
    url, finished = _start_teacher(args.latency)
    # Imports and the tokenizer load happen once per run, not per trace: do them before the clock starts.
    import langchain_openai  # noqa: F401

    import drp.graph.build  # noqa: F401
    from drp.tokens import TokenCounter

    TokenCounter()
    cpu_started = _cpu_seconds()
    summary = run(
        RunConfig.from_options(
            {
                "source": str(source),
                "policy": "skill-aware",
                "teacher_urls": [url],
                "teacher_model": "scripted",
                "concurrency": args.concurrency,
                "workers": args.workers,
            }
        ),
        RunPlace.under(workdir / "runs", "orch"),
        progress=False,
    )
    cpu_seconds = _cpu_seconds() - cpu_started  # worker processes are joined by now: their CPU counts
    requests, teacher_cpu = finished()
    accepted = summary.counts.get("accepted", 0)
    ideal = _ideal(args, requests)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.traces} traces, {accepted} accepted, {requests} teacher calls ({requests / args.traces:.2f}/trace), "
        f"latency {args.latency * 1000:.0f} ms, concurrency {args.concurrency}, workers {args.workers}"
        + ("" if args.variant == "drp" else f", variant {args.variant}")
    )
    achieved = args.traces / summary.seconds
    print(
        f"achieved {achieved:.1f} traces/s; ideal {ideal:.1f} traces/s; efficiency {achieved / ideal:.3f} "
        "(target >= 0.85)"
    )
    print(f"peak RSS {peak_mib:.0f} MiB (orchestrating process; the teacher runs in its own process)")
    print(
        f"orchestrator CPU {cpu_seconds * 1000 / args.traces:.1f} ms per trace "
        f"(the ideal rate needs under {1000 / ideal:.1f} ms per trace of wall time on this process)"
    )
    print(
        f"teacher process CPU {teacher_cpu * 1000 / args.traces:.1f} ms per trace (whole life, start-up included); "
        f"both processes share {len(os.sched_getaffinity(0))} cores"
    )
    print(f"wall {summary.seconds:.2f}s")


def _ideal(args, requests: int) -> float:
    calls_per_trace = requests / args.traces
    return args.concurrency / (calls_per_trace * args.latency) if args.latency else float("inf")


def usable_examples() -> list[dict]:
    """The handwritten examples that reach the pruner (correct and complete)."""
    examples = [json.loads(line) for line in (REPO / "examples" / "traces.jsonl").read_text().splitlines()]
    return [r for r in examples if r["id"] not in ("demo-007", "demo-008")]


def distinct_copies(examples: list[dict], count: int) -> list[dict]:
    """`count` traces made from the examples, each copy's text its own: a word naming the copy closes every
    sentence of its question and reasoning. drp keeps what it read of a text (token counts, derivations, answers)
    by the text, which pays within a trace (its windows and retries read the same text again) but would pay across
    repeated copies too, where a real run's traces are distinct. The word has no digits, so the numbers, the
    answer and the steps are the example's own."""
    copies = []
    for index in range(count):
        example, word = examples[index % len(examples)], _copy_word(index)
        tagged = {key: _SENTENCE_END.sub(rf" {word}\1", example[key]) for key in ("question", "response")}
        copies.append({**example, **tagged, "id": f"t{index:05d}"})
    return copies


_SENTENCE_END = re.compile(r"(?<=[a-z0-9])([.?!])(?=\s|$)")


def _copy_word(index: int) -> str:
    """A distinct lowercase word per index: "qa", "qb", …, "qz", "qba", …"""
    letters = ""
    while True:
        index, digit = divmod(index, 26)
        letters = "abcdefghijklmnopqrstuvwxyz"[digit] + letters
        if not index:
            return "q" + letters


def _cpu_seconds() -> float:
    """CPU of this process and of its finished children (the --workers processes; the teacher is still alive)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _start_teacher(latency: float):
    """The scripted teacher in its own process, as a real endpoint would be (it must not share our interpreter
    lock): its URL, and a function that stops it and returns (requests answered, its CPU seconds)."""
    ready, stop = multiprocessing.Queue(), multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(latency, ready, stop), daemon=True)
    server.start()
    url = ready.get(timeout=60)

    def finished() -> tuple[int, float]:
        stop.set()
        result = ready.get(timeout=60)
        server.join(timeout=10)
        return result

    return url, finished


def _serve(latency: float, ready, stop) -> None:
    with ScriptedTeacher(sensible, latency=latency) as teacher:
        ready.put(teacher.url)
        stop.wait()
        times = os.times()
        ready.put((len(teacher.requests), times.user + times.system))


# ------------------------------------------------------------------------------------------------ --compare


def _compare(args) -> None:
    names = [name.strip() for name in args.compare.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    passed = ["--traces", args.traces, "--concurrency", args.concurrency, "--latency", args.latency]
    passed = [str(value) for value in [*passed, "--workers", args.workers]]
    for number in range(1, args.rounds + 1):
        for name in names:
            done = subprocess.run(
                [sys.executable, __file__, "--variant", name, *passed], capture_output=True, text=True, env=os.environ
            )
            efficiency = re.search(r"efficiency ([\d.]+)", done.stdout)
            cpu = re.search(r"orchestrator CPU ([\d.]+) ms", done.stdout)
            wall = re.search(r"wall ([\d.]+)s", done.stdout)
            if done.returncode or not (efficiency and cpu and wall):
                print(f"round {number} {name:22s} failed:\n{done.stdout[-800:]}{done.stderr[-1500:]}")
                continue
            accepted = re.search(r"(\d+) accepted", done.stdout)
            print(
                f"round {number} {name:22s} efficiency {efficiency.group(1)}  orchestrator CPU {cpu.group(1)} "
                f"ms/trace  wall {wall.group(1)}s" + (f"  ({accepted.group(1)} accepted)" if accepted else ""),
                flush=True,
            )


# ------------------------------------------------------------------------------------------------ stand-ins


def _stub(layers: set[str]) -> None:
    if "tokens" in layers:
        from drp.tokens import TokenCounter

        TokenCounter.count = lambda self, text: len(text or "") // 4
    if "client" in layers:
        _bare_client()
    if "graph" in layers:
        import drp.run_traces

        drp.run_traces._graph = lambda: _PlainGraph()


def _bare_client() -> None:
    import aiohttp

    from drp.teacher import client
    from drp.teacher.replies import parse_json_reply, response_format

    sessions: dict[int, aiohttp.ClientSession] = {}  # one per (forked) worker process

    class Message:
        def __init__(self, reply: dict):
            choice, usage = reply["choices"][0], reply.get("usage") or {}
            self.content = choice["message"]["content"]
            self.response_metadata = {"finish_reason": choice.get("finish_reason")}
            self.usage_metadata = {
                "input_tokens": usage.get("prompt_tokens"),
                "output_tokens": usage.get("completion_tokens"),
            }

    async def ask(self, agent, messages, schema, max_tokens, temperature):
        session = sessions.get(os.getpid()) or sessions.setdefault(os.getpid(), aiohttp.ClientSession())
        started = time.perf_counter()
        body = {
            "model": self.settings.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "response_format": response_format("json_schema", schema),
        }
        async with session.post(f"{self.settings.url.rstrip('/')}/chat/completions", json=body) as response:
            message = Message(await response.json())
        parsed, error = parse_json_reply(message.content, schema)
        return client.Reply(
            parsed=parsed,
            raw=message.content,
            error=error,
            model=self.settings.model,
            latency_ms=client._ms(started),
            **self._usage(message, messages, message.content, max_tokens),
        )

    client.Teacher._ask = ask


class _PlainGraph:
    """The graph's nodes and routing (drp/graph/build.py) run by a plain loop."""

    async def ainvoke(self, state: dict, context) -> dict:
        from drp.graph import build

        runtime = type("Runtime", (), {"context": context})()
        state = dict(state)

        def merge(update: dict) -> bool:
            for key, value in update.items():
                state[key] = state.get(key, []) + value if key == "calls" else value
            return bool(state.get("status"))

        if (
            merge(await build._prepare(state, runtime))
            or merge(await build._segment(state, runtime))
            or merge(await build._classify(state, runtime))
        ):
            return state
        while not merge(await build._prune(state, runtime)) and not merge(await build._verify(state, runtime)):
            route = await build.route_after_verify(state, runtime)
            if route == "fallback":
                merge(await build._fallback(state, runtime))
            if route != "prune":
                break
        return state


# ------------------------------------------------------------------------------------------------ ceiling


def _ceiling(args) -> None:
    """The same scripted teacher, process layout and traces, with no drp at all."""
    traces = _recorded_requests()
    url, finished = _start_teacher(args.latency)
    ids = list(range(args.traces))
    context = multiprocessing.get_context("fork")
    per_worker = max(1, -(-args.concurrency // args.workers))
    cpu_started, started = _cpu_seconds(), time.perf_counter()
    workers = [
        context.Process(target=_replay, args=(url, traces, ids[index :: args.workers], per_worker))
        for index in range(args.workers)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_started
    requests, _ = finished()
    ideal = _ideal(args, requests)
    achieved = args.traces / seconds
    print(
        f"{args.traces} traces, {requests} teacher calls ({requests / args.traces:.2f}/trace), latency "
        f"{args.latency * 1000:.0f} ms, concurrency {args.concurrency}, workers {args.workers}: bare replay"
    )
    print(
        f"achieved {achieved:.1f} traces/s; ideal {ideal:.1f} traces/s; efficiency {achieved / ideal:.3f} "
        "(the harness's ceiling)"
    )
    print(f"orchestrator CPU {cpu * 1000 / args.traces:.1f} ms per trace (bare replay clients)")
    print(f"wall {seconds:.2f}s")


def _recorded_requests() -> list[list[bytes]]:
    """Each benchmark example's teacher requests (bodies, in order), from one drp run at concurrency 1."""
    from drp.run_config import RunConfig
    from drp.run_place import RunPlace
    from drp.runner import run
    from drp.store import open_run

    workdir = Path(tempfile.mkdtemp(prefix="drp-ceiling-"))
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
            RunPlace.under(workdir / "runs", "ceiling"),
            progress=False,
        )
        bodies = [json.dumps(request).encode() for request in teacher.requests]
    store = open_run(summary.path)
    # at concurrency 1 the traces run one after another in input order, and a trace's requests are consecutive
    per_trace = [sum(1 for call in store.calls(row["id"]) if call["llm"]) for row in store.traces(("id",))]
    store.close()
    traces, start = [], 0
    for count in per_trace:
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


if __name__ == "__main__":
    main()
