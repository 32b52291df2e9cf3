"""Orchestration efficiency of the LLM graph: 200 traces through `skill-aware` against the scripted loopback
teacher with a fixed latency per call. Efficiency = achieved traces/s ÷ ideal (C / (calls per trace × latency)).

    python benchmarks/orchestration.py [--traces 200] [--concurrency 32] [--latency 0.1]

Target (issue 2): efficiency ≥ 0.85 at concurrency 32 and 100 ms per call. Also prints peak memory."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from drp.jsonl import read_jsonl  # noqa: E402
from drp.paths import runs_dir  # noqa: E402
from drp.run_config import RunConfig  # noqa: E402
from drp.run_place import RunPlace  # noqa: E402
from drp.runner import run  # noqa: E402
from drp.testing.scripted_teacher import ScriptedTeacher  # noqa: E402
from drp.testing.skill_aware_responder import sensible  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=1, help="orchestrator processes (drp run --workers)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="drp-orch-"))
    os.environ["DRP_RUNS_DIR"] = str(workdir / "runs")
    usable = usable_examples()  # repeated under new ids
    source = workdir / "traces.jsonl"
    source.write_text(
        "".join(json.dumps({**usable[i % len(usable)], "id": f"t{i:05d}"}) + "\n" for i in range(args.traces))
    )
    # The teacher lives in its own process, as a real endpoint would: it must not share our interpreter lock.
    ready, stop = multiprocessing.Queue(), multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(args.latency, ready, stop), daemon=True)
    server.start()
    url = ready.get(timeout=60)
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
        RunPlace.under(runs_dir(), "orch"),
        progress=False,
    )
    cpu_seconds = _cpu_seconds() - cpu_started  # worker processes are joined by now: their CPU counts
    stop.set()
    requests, teacher_cpu = ready.get(timeout=60)
    server.join(timeout=10)
    accepted = summary.counts.get("accepted", 0)
    calls_per_trace = requests / args.traces
    achieved = args.traces / summary.seconds
    ideal = args.concurrency / (calls_per_trace * args.latency) if args.latency else float("inf")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.traces} traces, {accepted} accepted, {requests} teacher calls ({calls_per_trace:.2f}/trace), "
        f"latency {args.latency * 1000:.0f} ms, concurrency {args.concurrency}, workers {args.workers}"
    )
    print(
        f"achieved {achieved:.1f} traces/s; ideal {ideal:.1f} traces/s; "
        f"efficiency {achieved / ideal:.3f} (target >= 0.85)"
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


def usable_examples() -> list[dict]:
    """The handwritten examples that reach the pruner (correct and complete)."""
    examples = read_jsonl(REPO / "examples" / "traces.jsonl")
    return [r for r in examples if r["id"] not in ("demo-007", "demo-008")]


def _cpu_seconds() -> float:
    """CPU of this process and of its finished children (the --workers processes; the teacher is still alive)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _serve(latency: float, ready, stop) -> None:
    with ScriptedTeacher(sensible, latency=latency) as teacher:
        ready.put(teacher.url)
        stop.wait()
        times = os.times()
        ready.put((len(teacher.requests), times.user + times.system))


if __name__ == "__main__":
    main()
