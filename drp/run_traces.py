"""Executing a run's pending traces: the graph over each, with bounded concurrency, in this process or in
forked workers sharing them; each finished trace written whole (several in one transaction every WRITE_EVERY
seconds). A trace whose teacher could not be reached at all is left pending, not failed, and once every
endpoint is taken for down (drp.teacher.endpoints) no more traces are taken."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from drp.disk_errors import ADVICE, DISK_REFUSED_EXIT, DiskRefused, disk_error
from drp.errors import EXIT_ENDPOINT_DOWN
from drp.outcomes import FAILED, INTERNAL_ERROR, POLICY_ERROR, RETRIED_ON_RESUME, particulars, reason
from drp.outcomes import prefix as reason_prefix
from drp.run_config import RunConfig
from drp.run_errors import RunError
from drp.run_parts import RunParts
from drp.run_place import RunPlace
from drp.run_results import result_rows
from drp.store import RunStore, open_run

WRITE_EVERY = 0.2  # seconds between writes of finished traces


def execute(
    store: RunStore, place: RunPlace, config: RunConfig, parts: RunParts, progress: bool
) -> tuple[int, float, str | None]:
    """Prune every pending trace of the run open in `store` (up to --limit), in a session of the run. With
    `workers` > 1 the pending traces are shared among forked worker processes (each with its own event loop and
    database connection): one Python process saturates one core long before a fast teacher does. Returns how
    many traces were taken up, in how many seconds, and why traces were left pending when the teacher could not
    be reached (None: none was)."""
    from drp.agent_kinds import uses_llm

    execution, teacher = config.execution, parts.teacher
    if execution.resume and execution.retry_failed and teacher is not None:
        store.reopen_failed(reason_prefix(RETRIED_ON_RESUME))
    pending = store.pending_ids(config.source.limit)
    store.start_session(place.run_id)
    started = time.perf_counter()
    bar = _progress_bar(len(pending), progress)
    if teacher is not None:  # clients built once here, before worker processes fork and share them
        teacher.prepare([agent for role, agent in parts.policy.agents.items() if uses_llm(role, agent.kind)])
    graph = _graph()
    with _setup_frozen():
        if teacher is not None and config.teacher.mode == "batch":
            # every pending trace at once, in one process: each graph stage of all of them is one batch job
            everything = max(1, len(pending))
            unreachable = _run_loop(_process_ids(store, config, parts, graph, pending, everything, bar))
        elif execution.workers <= 1 or len(pending) < 2:
            unreachable = _run_loop(_process_ids(store, config, parts, graph, pending, execution.concurrency, bar))
        else:
            unreachable = _process_in_workers(place.folder, config, parts, graph, pending, store, bar)
    bar.close()
    return len(pending), time.perf_counter() - started, unreachable


@contextmanager
def _setup_frozen():
    """While the traces run, everything built before them (modules, tokenizer, policy, clients, graph: some
    400,000 objects, alive until the run ends) is out of the cyclic garbage collector's reach (`gc.freeze`, which
    costs nothing). Its full collections then walk only what the traces make instead of the whole heap (a third of
    a second each), and forked workers no longer write to, and so copy, every page of the heap they share with
    this process. Afterwards the objects are collectable again, for a process that goes on after the run."""
    import gc

    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _graph():
    from drp.graph.build import build_graph

    return build_graph()


async def _process_ids(
    store: RunStore, config: RunConfig, parts: RunParts, graph, ids: list[str], concurrency: int, bar=None
) -> str | None:
    """Run the graph over these traces, `concurrency` at a time, storing each as soon as it ends. A trace whose
    teacher could not be reached is left pending; returns why, if any was (None: every trace ended)."""
    from drp.teacher.scope import CURRENT_TRACE

    teacher, counter = parts.teacher, parts.counter
    ctx = _context(config, parts)
    queue: asyncio.Queue = asyncio.Queue()
    for trace_id in ids:
        queue.put_nowait(trace_id)
    finished = _Finished(store, parts.policy.policy_hash, bar)
    unreachable: list[str] = []  # why traces were left pending (no teacher endpoint reached)

    def teacher_down() -> str | None:
        return getattr(teacher.transport, "down", None) if teacher is not None else None

    async def worker():
        while not queue.empty() and not teacher_down():
            trace = store.trace_input(queue.get_nowait())
            CURRENT_TRACE.set(trace["id"])
            if teacher is not None:
                teacher.trace_started()
            try:
                result = await _process(graph, ctx, trace)
                if result.get("teacher_unreachable"):  # the endpoints' fault, not the trace's: left pending
                    unreachable.append(particulars(result["reason"]))
                    continue
                finished.results.append((trace["id"], *result_rows(trace, result, counter)))
            finally:
                if teacher is not None:
                    teacher.trace_finished()

    writing = asyncio.create_task(finished.keep_writing())
    traces = asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    write_failed = False
    try:
        # A refused write (a full disk) ends the run at once: the traces still running would only be lost too.
        await asyncio.wait({writing, traces}, return_when=asyncio.FIRST_COMPLETED)
        if writing.done():  # it never returns: it failed
            write_failed = True
            traces.cancel()
            await asyncio.gather(traces, return_exceptions=True)  # until they have stopped
            writing.result()  # the write's error
        await traces
    finally:
        traces.cancel()
        writing.cancel()
        if not write_failed:
            finished.write()  # the rest
        if teacher is not None:
            await teacher.aclose()
    if teacher_down():
        return teacher_down()
    if unreachable:
        return f"no teacher endpoint could be reached for {len(unreachable)} traces (last: {unreachable[-1][:200]})"
    return None


def _context(config: RunConfig, parts: RunParts):
    """What every graph node of every trace is given (drp.run_context)."""
    from drp.run_context import RunContext

    return RunContext(
        policy=parts.policy,
        teacher=parts.teacher,
        counter=parts.counter,
        max_record_chars=config.source.max_record_chars,
        reuse=parts.reuse,
    )


class _Finished:
    """Finished traces, written together every WRITE_EVERY seconds: one transaction for many traces costs far
    less than one each, and each trace still lands whole or not at all. The ones not yet written when a kill
    comes are lost like traces in flight: redone on resume."""

    def __init__(self, store: RunStore, policy_hash: str, bar=None):
        self.store, self.policy_hash, self.bar = store, policy_hash, bar
        self.results: list[tuple] = []

    def write(self) -> None:
        batch, self.results = self.results, []
        self.store.save_results(batch, self.policy_hash)
        if self.bar is not None and batch:
            self.bar.update(len(batch))
            self.bar.set_postfix_str(batch[-1][1].get("status") or "")

    async def keep_writing(self) -> None:
        while True:
            await asyncio.sleep(WRITE_EVERY)
            self.write()


def _process_in_workers(
    folder: Path, config: RunConfig, parts: RunParts, graph, ids: list[str], store: RunStore, bar
) -> str | None:
    """Fork workers over interleaved shares of the pending traces; follow their progress in the database.
    Returns why traces were left pending when a worker could not reach the teacher (see _process_ids)."""
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("fork")  # the parent has imported everything: forking is cheap
    workers = min(config.execution.workers, len(ids))
    per_worker = max(1, -(-config.execution.concurrency // workers))
    parent = os.getpid()
    processes = [
        context.Process(
            target=_worker_main,
            args=(folder, config, parts, graph, ids[index::workers], per_worker, parent),
        )
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    done_before = store.terminal_count()
    try:
        running = [process.sentinel for process in processes]
        while running:
            # Woken by a worker's exit as well as by the clock: the run ends when its last worker does,
            # not up to a progress tick later.
            ended = wait(running, timeout=0.2)
            running = [sentinel for sentinel in running if sentinel not in ended]
            bar.n = store.terminal_count() - done_before
            bar.refresh()
    except KeyboardInterrupt:
        for process in processes:
            process.terminate()
        raise
    for process in processes:
        process.join()
    bar.n = store.terminal_count() - done_before
    failed = [p.exitcode for p in processes if p.exitcode and p.exitcode != EXIT_ENDPOINT_DOWN]
    if DISK_REFUSED_EXIT in failed:  # a worker said why it stopped (drp.disk_errors): say it once, in one line
        raise DiskRefused(
            f"a worker process could not write (the disk is full, or a file is over the file-size limit): {ADVICE}"
        )
    if failed:
        raise RunError(f"{len(failed)} worker process(es) died (exit codes {failed}); finish with --resume")
    stopped = sum(1 for p in processes if p.exitcode == EXIT_ENDPOINT_DOWN)
    return f"{stopped} worker(s) could not reach any teacher endpoint" if stopped else None


def _worker_main(
    folder: Path, config: RunConfig, parts: RunParts, graph, ids: list[str], concurrency: int, parent: int
) -> None:
    from drp.parent_death import die_with_parent

    # A worker belongs to the process that owns the run: when that one dies (even by SIGKILL), so does the
    # worker, at once, so no orphan keeps writing beside a resume. What it finished is committed (but for the
    # last WRITE_EVERY seconds, redone on resume).
    die_with_parent(signal.SIGKILL, parent)
    try:
        store = open_run(folder, write=True)  # its own connection: one is never shared across processes
        try:
            unreachable = _run_loop(_process_ids(store, config, parts, graph, ids, concurrency))
        finally:
            store.close()
        if unreachable:
            sys.exit(EXIT_ENDPOINT_DOWN)  # the parent says so, once
    except (OSError, sqlite3.Error) as error:
        if disk_error(error) is None:
            raise
        sys.exit(DISK_REFUSED_EXIT)  # no traceback: the parent reports it


def _run_loop(main):
    """Run the traces' event loop: uvloop's where installed (its sockets and scheduling cost a fraction of
    asyncio's own per request), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def _process(graph, ctx, trace: dict) -> dict:
    from drp.prompting import PolicyTemplateError

    started = time.perf_counter()
    try:
        state = await graph.ainvoke({"trace": trace, "calls": []}, context=ctx)
    except PolicyTemplateError as exc:  # a template that fails only on some traces: this trace, not the run
        state = {"status": FAILED, "reason": reason(POLICY_ERROR, exc), "calls": []}
    except Exception as exc:  # a bug must not take the other traces down: record it on this trace
        state = {"status": FAILED, "reason": reason(INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"), "calls": []}
    state["seconds"] = time.perf_counter() - started
    if not state.get("status"):
        state.update(status=FAILED, reason=reason(INTERNAL_ERROR, "the graph ended without a verdict"))
    return state


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="trace", dynamic_ncols=True, desc="pruning")
