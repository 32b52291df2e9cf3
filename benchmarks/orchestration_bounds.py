"""How far each layer drp is built on keeps `orchestration.py` from its target: the same benchmark, run with
layers replaced by bare stand-ins (never how drp runs; an upper bound on what removing a layer could gain).

    python benchmarks/orchestration_bounds.py [--rounds 2] [orchestration.py's arguments, e.g. --workers 2]

Each round runs, in fresh processes and alternated so the host's load falls on all alike:
  drp                 drp as it is
  -tokens             token counts replaced by len(text) // 4
  -tokens -client     also the teacher call as one bare aiohttp POST (no langchain-openai, no openai SDK)
  -tokens -client -graph   also the same nodes and routing run by a plain loop (no LangGraph)
and prints each run's efficiency and orchestrator CPU per trace."""

from __future__ import annotations

import argparse
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = {
    "drp": [],
    "-tokens": ["tokens"],
    "-tokens -client": ["tokens", "client"],
    "-tokens -client -graph": ["tokens", "client", "graph"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--without", help=argparse.SUPPRESS)  # one run, in a child process
    args, passed = parser.parse_known_args()
    if args.without is not None:
        _stub(set(filter(None, args.without.split(","))))
        sys.argv = [str(HERE / "orchestration.py"), *passed]
        runpy.run_path(str(HERE / "orchestration.py"), run_name="__main__")
        return
    for number in range(1, args.rounds + 1):
        for name, layers in VARIANTS.items():
            done = subprocess.run(
                [sys.executable, __file__, "--without", ",".join(layers), *passed],
                capture_output=True,
                text=True,
                env=os.environ,
            )
            efficiency = re.search(r"efficiency ([\d.]+)", done.stdout)
            cpu = re.search(r"orchestrator CPU ([\d.]+) ms", done.stdout)
            accepted = re.search(r"(\d+) traces, (\d+) accepted", done.stdout)
            if done.returncode or not (efficiency and cpu and accepted):
                print(f"round {number} {name:24s} failed:\n{done.stdout[-800:]}{done.stderr[-1500:]}")
                continue
            print(
                f"round {number} {name:24s} efficiency {efficiency.group(1)}  orchestrator CPU {cpu.group(1)} "
                f"ms/trace  ({accepted.group(2)} of {accepted.group(1)} accepted)",
                flush=True,
            )


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
    import time

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
            **self._usage(message, messages, message.content),
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


if __name__ == "__main__":
    main()
