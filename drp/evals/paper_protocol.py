"""The paper protocol's requests for a set of benchmarks: each problem's raw prompt and its token cap, the
paper's cap (or the user's) clipped to what the served model's context leaves after the prompt."""

from __future__ import annotations

from collections.abc import Callable

from drp.evals.problems import Benchmark
from drp.evals.protocols import Request, paper_cap, paper_request


def paper_requests(
    benchmarks: list[Benchmark],
    override: int | None,
    context: int | None,
    count_tokens: Callable[[str], int],
    echo: Callable[[str], None],
    eos: str | None = None,
) -> dict[str, dict[str, tuple[Request, int]]]:
    """Benchmark → problem id → (request, cap). A cap the context cannot hold is clipped, with one warning
    per benchmark: vLLM refuses a request whose prompt plus max_tokens exceed the model's context."""
    requests: dict[str, dict[str, tuple[Request, int]]] = {}
    for benchmark in benchmarks:
        wanted = override or paper_cap(benchmark.name)
        per_problem, clipped = {}, []
        for problem in benchmark.problems:
            request = paper_request(benchmark.name, problem.question, eos)
            cap = wanted
            if context is not None:
                room = context - count_tokens(request.prompt)
                if room < wanted:
                    cap = max(1, room)
                    clipped.append(cap)
            per_problem[problem.id] = (request, cap)
        if clipped:
            echo(
                f"warning: {benchmark.name}: a cap of {wanted} tokens does not fit the served model's context of "
                f"{context} tokens; clipped to the context left after each prompt ({min(clipped)}–{max(clipped)} "
                f"tokens) for {len(clipped)} of {len(benchmark.problems)} problems"
            )
        requests[benchmark.name] = per_problem
    return requests
