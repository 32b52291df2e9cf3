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
    errors = _ErrorRun(max_consecutive_errors, stop)

    def worker() -> None:
        while not stop.is_set():
            try:
                task = todo.get_nowait()
            except queue.Empty:
                return
            completion = task.run(endpoint, decoding)
            # Counted here, before this thread takes its next task: counted by the calling thread, a busy one
            # (a slow disk under the samples file), the workers would send on past the limit meanwhile.
            reason = errors.add(completion)
            if reason:  # once: the first to reach the limit
                outcome.aborted = reason
            results.put((task, completion))

    # Daemon threads: on Ctrl-C the process exits at once instead of waiting for in-flight requests.
    threads = [
        threading.Thread(target=worker, daemon=True, name=f"sampler-{i}")
        for i in range(max(1, min(concurrency, len(tasks))))
    ]
    for thread in threads:
        thread.start()
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
            else:
                outcome.done += 1
    except KeyboardInterrupt:
        stop.set()
        outcome.interrupted = True
    return outcome


class _ErrorRun:
    """Failed requests in a row, in the order they end across the worker threads; at the limit, `stop` is set."""

    def __init__(self, limit: int, stop: threading.Event):
        self.limit, self.stop, self.count = limit, stop, 0
        self._lock = threading.Lock()

    def add(self, completion: Completion) -> str | None:
        """Count one ended request: why the pool stops, when this error brings the run of errors to the limit."""
        with self._lock:  # stop is set before any other worker can count an end and go for its next task
            self.count = self.count + 1 if completion.error else 0
            if not (self.limit and self.count == self.limit) or self.stop.is_set():
                return None
            self.stop.set()
            return f"{self.count} requests in a row failed (last: {completion.error})"
