"""What `drp run --reuse` asks again when only the pruner's prompt changed (issue 20).

    python benchmarks/reuse_share.py [--traces 200] [--latency 0.0] [--concurrency 16]

A copy of `skill-aware` prunes the first N shared real traces (the handwritten examples where ../shared is absent)
against the scripted loopback teacher; then a second copy whose pruner prompt has one more sentence ("Also delete
checks that only repeat a result already found.") reruns them with `--reuse` of the first run. The scripted
teacher honours that sentence (it then deletes repeated checks too), so some pruned results really change.
Printed: the share of teacher calls and of teacher input tokens the second run asked again, which nodes they
were, and how many fall outside the target (the pruner's calls, and the calls after the pruner of a trace whose
pruned result changed). Finally the first policy reusing its own first run: new calls and whether pruned.jsonl
is byte-identical."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from drp.testing.scripted_teacher import ScriptedTeacher, Text  # noqa: E402
from drp.testing.skill_aware_responder import agent_of, first_user, needed_in, sensible, steps_in  # noqa: E402

MARKER = "Also delete checks that only repeat a result already found."


def policy_aware(request: dict) -> Text:
    """The sensible scripted teacher; a pruner prompt with MARKER also gets its `check` steps deleted."""
    if agent_of(request) != "pruner" or MARKER not in request["messages"][0]["content"]:
        return sensible(request)
    reply = json.loads(sensible(request).content)
    needed, steps = needed_in(request), steps_in(request)
    checks = [number for number, skill, _ in steps if skill == "check" and number not in needed]
    delete = sorted(set(reply["delete"]) | set(checks))
    if len(delete) == len(steps) and "The reasoning has" not in first_user(request):
        delete = delete[1:]
    return Text(json.dumps({**reply, "delete": delete}))


def traces(count: int, folder: Path) -> Path:
    from drp.paths import shared_dir

    shared = shared_dir()
    found = shared / "data" / "traces" / "r1-distill-qwen-1.5b.e2h-gsm8k.jsonl" if shared else None
    if found is not None and found.is_file():
        lines = found.read_text(encoding="utf-8").splitlines()[:count]
    else:  # the examples, each copy its own question (copies would share their requests)
        examples = [json.loads(line) for line in (REPO / "examples" / "traces.jsonl").read_text().splitlines()]
        lines = [
            json.dumps({**r, "id": f"{r['id']}-{n}", "question": f"{r['question']} (copy {n})"})
            for n in range(-(-count // len(examples)))
            for r in examples
        ][:count]
    source = folder / "traces.jsonl"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per scripted teacher reply")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="drp-reuse-"))
    os.environ["DRP_RUNS_DIR"] = str(work / "runs")
    from drp.paths import builtin_prompts_dir, run_dir, runs_dir
    from drp.run_config import RunConfig
    from drp.run_place import RunPlace
    from drp.runner import run
    from drp.store import open_run

    policies = work / "policies"
    shutil.copytree(builtin_prompts_dir() / "skill-aware", policies / "base")
    shutil.copytree(builtin_prompts_dir() / "skill-aware", policies / "changed")
    pruner = policies / "changed" / "pruner.yaml"
    pruner.write_text(pruner.read_text().replace("system: |\n", f"system: |\n  {MARKER}\n", 1))
    source = traces(args.traces, work)

    ready, stop = multiprocessing.Queue(), multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(args.latency, ready, stop), daemon=True)
    server.start()
    url = ready.get(timeout=60)

    # Imports and the tokenizer load happen once per process, not per run: done before the first clock starts.
    import langchain_openai  # noqa: F401

    import drp.graph.build  # noqa: F401
    from drp.tokens import TokenCounter

    TokenCounter()
    cpu: dict[str, float] = {}

    def prune(run_id: str, policy: str, reuse: list[str]) -> float:
        started, cpu_started = time.perf_counter(), time.process_time()
        run(
            RunConfig.from_options(
                {
                    "source": str(source),
                    "policy": policy,
                    "prompts_dirs": [str(policies)],
                    "teacher_urls": [url],
                    "teacher_model": "scripted",
                    "concurrency": args.concurrency,
                    "reuse": [str(run_dir(name).resolve()) for name in reuse],
                }
            ),
            RunPlace.under(runs_dir(), run_id),
            progress=False,
        )
        cpu[run_id] = time.process_time() - cpu_started
        return time.perf_counter() - started

    seconds = {
        "first": prune("first", "base", []),
        "changed": prune("changed", "changed", ["first"]),
        "same": prune("same", "base", ["first"]),
    }
    stop.set()
    server.join(timeout=10)

    first, changed = open_run(run_dir("first")), open_run(run_dir("changed"))
    before, after = results_of(first), results_of(changed)
    differs = {trace for trace, result in after.items() if before.get(trace) != result}
    calls = teacher_calls(changed)
    new = [call for call in calls if call["reused_run"] is None]
    pruner_seq = {}  # the first pruner call of each trace: what follows it is downstream of the pruner
    for call in calls:
        if call["node"] == "pruner":
            pruner_seq[call["trace_id"]] = min(pruner_seq.get(call["trace_id"], call["seq"]), call["seq"])
    outside = [
        call
        for call in new
        if call["node"] != "pruner"
        and not (call["trace_id"] in differs and call["seq"] > pruner_seq.get(call["trace_id"], call["seq"]))
    ]
    tokens = sum(call["input_tokens"] or 0 for call in calls)
    new_tokens = sum(call["input_tokens"] or 0 for call in new)
    by_node: dict[str, list[int]] = {}
    for call in calls:
        entry = by_node.setdefault(call["node"], [0, 0])
        entry[0] += 1
        entry[1] += call["reused_run"] is None

    same_new = sum(call["reused_run"] is None for call in teacher_calls(open_run(run_dir("same"))))
    retries = sum(call["reuse_key"] is None for call in teacher_calls(first))
    identical = (run_dir("same") / "pruned.jsonl").read_bytes() == (run_dir("first") / "pruned.jsonl").read_bytes()
    origin = "shared real traces" if len(after) and "demo" not in next(iter(after)) else "examples"
    print(
        f"{len(after)} traces ({source.name} from {origin}), "
        f"scripted teacher latency {args.latency} s, concurrency {args.concurrency}"
    )
    print(
        f"pruner prompt changed, --reuse of the first run: {len(new)} of {len(calls)} teacher calls asked again "
        f"({len(new) / len(calls):.1%}), {new_tokens:,} of {tokens:,} input tokens ({new_tokens / tokens:.1%})"
    )
    for node, (total, asked) in by_node.items():
        print(f"  {node}: {asked} of {total} asked again")
    print(
        f"  traces whose pruned result changed: {len(differs)}; asked calls outside the target "
        f"(not the pruner's, not after the pruner of a changed trace): {len(outside)}"
    )
    print(
        f"same policy, --reuse of the first run: {same_new} new calls (the first run's retries: {retries}), "
        f"pruned.jsonl byte-identical: {identical}"
    )
    print(
        "wall seconds: "
        + ", ".join(f"{name} {value:.1f}" for name, value in seconds.items())
        + " · drp's CPU seconds: "
        + ", ".join(f"{name} {value:.1f}" for name, value in cpu.items())
    )
    shutil.rmtree(work, ignore_errors=True)


def _serve(latency: float, ready, stop) -> None:
    with ScriptedTeacher(policy_aware, latency=latency) as teacher:
        ready.put(teacher.url)
        stop.wait()


def results_of(store) -> dict[str, tuple]:
    """Each trace's status and pruned response, read through the store's API."""
    return {
        row["id"]: (row["status"], row["pruned_response"]) for row in store.traces(("id", "status", "pruned_response"))
    }


def teacher_calls(store) -> list[dict]:
    """The run's teacher (LLM) calls, trace by trace in input order, each trace's in its order."""
    return [call for row in store.traces(("id",)) for call in store.calls(row["id"]) if call["llm"]]


if __name__ == "__main__":
    main()
