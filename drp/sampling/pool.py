"""The worker pool: requests in flight on threads, results handled one at a time in the calling thread (so the
samples file has one writer, flushed per sample: a kill loses only in-flight samples)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from drp.sampling.client import Completion, Decoding, Endpoint


@dataclass(frozen=True)
class Task:
    key: tuple  # the resume key, e.g. (benchmark, seed, problem_id)
    messages: list[dict]
    seed: int | None
    payload: Any = None
    prompt: str | None = None  # a raw completion (no chat template) instead of the messages
    stop: tuple[str, ...] = ()
    max_tokens: int | None = None  # this task's cap, when it is not the decoding's

    def run(self, endpoint: Endpoint, decoding: Decoding) -> Completion:
        if self.max_tokens is not None:
            decoding = replace(decoding, max_tokens=self.max_tokens)
        if self.prompt is not None:
            return endpoint.complete_raw(self.prompt, self.stop, decoding, self.seed)
        return endpoint.complete(self.messages, decoding, self.seed)


@dataclass
class PoolOutcome:
    done: int = 0
    failed: int = 0
    aborted: str | None = None  # why the run stopped early (too many errors in a row)
    interrupted: bool = False


def run_tasks(
    tasks: list[Task],
    endpoint: Endpoint,
    decoding: Decoding,
    concurrency: int,
    on_result: Callable[[Task, Completion], None],
    max_consecutive_errors: int = 20,
) -> PoolOutcome:
    """Sample every task; on_result runs in this thread. Stops submitting after too many errors in a row."""
    outcome = PoolOutcome()
    if not tasks:
        return outcome
    todo: queue.Queue = queue.Queue()
    for task in tasks:
        todo.put(task)
    results: queue.Queue = queue.Queue()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                task = todo.get_nowait()
            except queue.Empty:
                return
            results.put((task, task.run(endpoint, decoding)))

    # Daemon threads: on Ctrl-C the process exits at once instead of waiting for in-flight requests.
    threads = [
        threading.Thread(target=worker, daemon=True, name=f"sampler-{i}")
        for i in range(max(1, min(concurrency, len(tasks))))
    ]
    for thread in threads:
        thread.start()
    in_a_row, last_error = 0, None
    try:
        while True:
            try:
                task, completion = results.get(timeout=0.2)
            except queue.Empty:
                if not any(t.is_alive() for t in threads) and results.empty():
                    break
                continue
            on_result(task, completion)
            if completion.error:
                outcome.failed += 1
                in_a_row, last_error = in_a_row + 1, completion.error
                if max_consecutive_errors and in_a_row >= max_consecutive_errors and not stop.is_set():
                    stop.set()
                    outcome.aborted = f"{in_a_row} requests in a row failed (last: {last_error})"
            else:
                outcome.done += 1
                in_a_row = 0
    except KeyboardInterrupt:
        stop.set()
        outcome.interrupted = True
    return outcome
