"""Run the pruning graph over a dataset: ingest records, process pending traces with bounded
concurrency, write each finished trace atomically, resume where a killed run stopped.

One process owns a run at a time (drp/run_lock.py); a new run is built aside and appears whole
(drp/run_folders.py); a resume under a changed policy is refused unless asked for, and then recorded.

A trace whose teacher could not be reached at all (no endpoint answered) is left pending, not failed, and once
every endpoint is taken for down (drp.teacher.endpoints) the run stops taking traces and ends with a
TeacherUnreachable error; a resume then finishes them. A resume also retries the traces that failed on a
teacher error (an endpoint's fault, not the trace's) unless told not to (`retry_failed`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from drp import input_traces
from drp.agent_kinds import uses_llm
from drp.disk_errors import ADVICE, DISK_REFUSED_EXIT, DiskRefused, disk_error
from drp.errors import EXIT_ENDPOINT_DOWN, UserError
from drp.jsonl import atomic_write, write_jsonl
from drp.layout import join_response
from drp.outcomes import ACCEPTED, FAILED, INTERNAL_ERROR, POLICY_ERROR, RETRIED_ON_RESUME, particulars, reason
from drp.outcomes import prefix as reason_prefix
from drp.paths import new_run_dir
from drp.run_folders import clear_leftovers, is_empty_folder, is_run_folder, publish, staging
from drp.run_lock import lock_run
from drp.store import DB_NAME, RunStore, check_intact, dumps, now, open_run

DEFAULT_POLICY = "skill-aware"
WRITE_EVERY = 0.2  # seconds between writes of finished traces


class RunError(UserError):
    """A problem with the run as a whole (bad options, existing run): reported before any trace is touched."""


class TeacherUnreachable(UserError):
    """No teacher endpoint could be reached: the run stopped, the traces it could not do are left pending."""

    exit_code = EXIT_ENDPOINT_DOWN


@dataclass
class RunOptions:
    source: str
    run_id: str
    policy: str | None = None  # None: skill-aware for a new run, the run's own policy on --resume
    teacher_urls: list[str] = field(default_factory=list)  # one or more endpoints (requests go to the least busy)
    teacher_model: str | None = None
    teacher_api_key_env: str = "OPENAI_API_KEY"
    structured_output: str = "json_schema"
    teacher_timeout: float | None = None  # total deadline per request; None: sized from the request's max_tokens
    teacher_max_retries: int = 2
    teacher_mode: str = "online"  # or "batch": the OpenAI Batch API (drp.teacher.batch)
    batch_poll_seconds: float = 30.0
    batch_call_timeout: float | None = None  # total deadline per Files/Batches API call (None: drp.teacher.batch's)
    batch_poll_failures: int = 10  # failed polls in a row that end a batch job
    batch_job_timeout: float = 26 * 3600.0  # seconds a batch job may take from its submission
    teacher_price: str | None = None  # IN,OUT per million tokens or a price table name (drp.costs)
    prices_file: str | None = None
    limit: int | None = None
    concurrency: int = 8
    workers: int = 1
    resume: bool = False
    overwrite: bool = False
    tokenizer: str | None = None
    field_map: dict[str, str] = field(default_factory=dict)
    split: str = "train"
    prompts_dirs: list[str] = field(default_factory=list)
    policy_overrides: dict[str, object] = field(default_factory=dict)
    allow_policy_change: bool = False  # resume under a policy that differs from the run's (both are recorded)
    retry_failed: bool = True  # on resume, traces that failed on a teacher error are tried again
    max_record_chars: int = input_traces.DEFAULT_MAX_RECORD_CHARS
    teacher_tokenizer: str | None = None  # counts teacher calls that come without usage (None: the model's folder)
    reuse: list[str] = field(default_factory=list)  # run folders whose stored teacher replies answer equal requests


@dataclass
class RunSummary:
    run_id: str
    path: Path
    processed: int
    counts: dict[str, int]
    seconds: float

    @property
    def failed(self) -> int:
        return self.counts.get(FAILED, 0)


def run(options: RunOptions, progress: bool = True) -> RunSummary:
    """Prune every pending trace of a run. With `workers` > 1 the pending traces are shared among forked
    worker processes (each with its own event loop and database connection): one Python process saturates
    one core long before a fast teacher does."""
    folder = new_run_dir(options.run_id)
    with lock_run(options.run_id):  # before anything is read or written; the workers share it
        clear_leftovers(options.run_id)
        options, saved = _settle_existing_run(folder, options)
        if saved is None:
            input_traces.check_source(options.source)  # a missing input makes no run
        policy = _load_policy(options)
        teacher = _teacher(options, policy, folder)  # refuse an LLM policy without a teacher before touching anything
        _price(options, teacher)  # and an unknown price
        changes = _policy_changes(options, saved, policy) if saved else []
        reuse = _reuse_sources(options, folder, teacher)
        counter = _counter(options)
        if saved is None:
            _create(folder, options, policy, counter, teacher)
            store = open_run(folder, write=True)
        else:
            store = _reopen(folder, options, policy, counter, teacher, saved, changes)
        try:
            return _prune_pending(store, folder, options, policy, teacher, progress, reuse)
        finally:
            if reuse is not None:
                reuse.close()


def _reuse_sources(options: RunOptions, folder: Path, teacher):
    """The stored replies of the --reuse runs (None without any, or without a teacher to stand in for). A run
    never reuses itself: its calls are rewritten as it goes (and replaced whole by --overwrite)."""
    from drp.reuse import open_sources

    if not options.reuse or teacher is None:
        return None
    for source in options.reuse:
        if _same_file(source, str(folder)):
            raise RunError(
                f"--reuse {Path(source).name}: a run cannot reuse its own replies; reuse another run "
                "(copy this one under a new id first to rerun it)"
            )
    return open_sources(options.reuse)


def _prune_pending(
    store: RunStore, folder: Path, options: RunOptions, policy, teacher, progress: bool, reuse=None
) -> RunSummary:
    if options.resume and options.retry_failed and teacher is not None:
        store.reopen_failed(reason_prefix(RETRIED_ON_RESUME))
    pending = store.pending_ids(options.limit)
    store.start_session(options.run_id)
    started = time.perf_counter()
    bar = _progress_bar(len(pending), progress)
    if teacher is not None:  # clients built once here, before worker processes fork and share them
        teacher.prepare([agent for role, agent in policy.agents.items() if uses_llm(role, agent.kind)])
    graph = _graph()
    batch = teacher is not None and options.teacher_mode == "batch"
    with _setup_frozen():
        if batch:  # every pending trace at once, in one process: each graph stage of all of them is one batch job
            unreachable = _run_loop(
                _process_ids(options, folder, policy, teacher, graph, pending, max(1, len(pending)), bar, reuse)
            )
        elif options.workers <= 1 or len(pending) < 2:
            unreachable = _run_loop(
                _process_ids(options, folder, policy, teacher, graph, pending, options.concurrency, bar, reuse)
            )
        else:
            unreachable = _process_in_workers(options, folder, policy, teacher, graph, pending, store, bar, reuse)
    bar.close()
    seconds = time.perf_counter() - started
    store.end_session(options.run_id, seconds)
    write_pruned_jsonl(store, folder)
    counts = store.status_counts()
    store.close()
    if unreachable:
        error = TeacherUnreachable(
            f"{unreachable}: stopped with {counts.get('pending', 0)} traces left pending; "
            f"finish with `drp run {options.source} --run-id {options.run_id} --resume` "
            "once an endpoint answers"
        )
        error.reason = unreachable
        raise error
    return RunSummary(options.run_id, folder, len(pending), counts, seconds)


def _reopen(folder: Path, options: RunOptions, policy, counter, teacher, saved: dict, changes: list[str]) -> RunStore:
    """An existing run, for this session: its config brought up to date (the policy history included)."""
    store = open_run(folder, write=True)
    _write_config(folder, store, options, policy, counter, teacher, _history(saved, policy, changes))
    if store.run_row().get("input_lines") is None:  # a run made before runs were ingested whole
        if _is_gone(options.source):
            raise RunError(
                f"the input of run {options.run_id!r}, {options.source}, is missing: pass where it is now, "
                f"`drp run NEW_PATH --run-id {options.run_id} --resume`"
            )
        lines = store.ingest(input_traces.load(options.source, options.field_map, options.split))
        store.save_run(options.run_id, {"input_lines": lines})
    return store


def _create(folder: Path, options: RunOptions, policy, counter, teacher) -> None:
    """Build the run aside (database, every input line, settings; the run's row last) and move it into place
    whole: a kill at any instant before leaves no run, after leaves a resumable one."""
    with staging(options.run_id) as staged:
        store = open_run(staged, write=True)
        try:
            lines = store.ingest(input_traces.load(options.source, options.field_map, options.split))
            history = [
                {"hash": policy.policy_hash, "since": now(), "prompt_hashes": policy.prompt_hashes, "changes": []}
            ]
            _write_config(staged, store, options, policy, counter, teacher, history, input_lines=lines)
        finally:
            store.close()
        publish(staged, folder)


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
    options: RunOptions, folder: Path, policy, teacher, graph, ids: list[str], concurrency: int, bar=None, reuse=None
) -> str | None:
    """Run the graph over these traces, `concurrency` at a time, storing each as soon as it ends. A trace whose
    teacher could not be reached is left pending; returns why, if any was (None: every trace ended)."""
    from drp.agents.context import RunContext
    from drp.teacher.scope import CURRENT_TRACE

    store = open_run(folder, write=True)
    counter = _counter(options)
    ctx = RunContext(
        policy=policy, teacher=teacher, counter=counter, max_record_chars=options.max_record_chars, reuse=reuse
    )
    queue: asyncio.Queue = asyncio.Queue()
    for trace_id in ids:
        queue.put_nowait(trace_id)
    finished: list[tuple] = []  # results not yet written (a kill loses them like traces in flight: redone on resume)
    unreachable: list[str] = []  # why traces were left pending (no teacher endpoint reached)

    def teacher_down() -> str | None:
        return getattr(teacher.transport, "down", None) if teacher is not None else None

    def write_finished() -> None:
        batch = finished[:]
        finished.clear()
        store.save_results(batch, policy.policy_hash)
        if bar is not None and batch:
            bar.update(len(batch))
            bar.set_postfix_str(batch[-1][1].get("status") or "")

    async def writer():
        # Finished traces are written together every WRITE_EVERY seconds: one transaction for many traces costs
        # far less than one each, and each trace still lands whole or not at all.
        while True:
            await asyncio.sleep(WRITE_EVERY)
            write_finished()

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
                finished.append((trace["id"], *_result_rows(trace, result, counter)))
            finally:
                if teacher is not None:
                    teacher.trace_finished()

    writing = asyncio.create_task(writer())
    try:
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    finally:
        writing.cancel()
        write_finished()
        if teacher is not None:
            await teacher.aclose()
        store.close()
    if teacher_down():
        return teacher_down()
    if unreachable:
        return f"no teacher endpoint could be reached for {len(unreachable)} traces (last: {unreachable[-1][:200]})"
    return None


def _process_in_workers(
    options: RunOptions, folder: Path, policy, teacher, graph, ids: list[str], store: RunStore, bar, reuse=None
) -> str | None:
    """Fork workers over interleaved shares of the pending traces; follow their progress in the database.
    Returns why traces were left pending when a worker could not reach the teacher (see _process_ids)."""
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("fork")  # the parent has imported everything: forking is cheap
    workers = min(options.workers, len(ids))
    per_worker = max(1, -(-options.concurrency // workers))
    parent = os.getpid()
    processes = [
        context.Process(
            target=_worker_main,
            args=(options, folder, policy, teacher, graph, ids[index::workers], per_worker, parent, reuse),
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
    options: RunOptions, folder: Path, policy, teacher, graph, ids: list[str], concurrency: int, parent: int, reuse=None
) -> None:
    from drp.parent_death import die_with_parent

    # A worker belongs to the process that owns the run: when that one dies (even by SIGKILL), so does the
    # worker, at once, so no orphan keeps writing beside a resume. What it finished is committed (but for the
    # last WRITE_EVERY seconds, redone on resume).
    die_with_parent(signal.SIGKILL, parent)
    try:
        if _run_loop(_process_ids(options, folder, policy, teacher, graph, ids, concurrency, reuse=reuse)):
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


def _counter(options: RunOptions):
    from drp.tokens import TokenCounter

    try:
        return TokenCounter(options.tokenizer)
    except ValueError as exc:  # a tokenizer that cannot be loaded: said before any run exists
        raise RunError(str(exc)) from None


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


def _result_rows(trace: dict, state: dict, counter) -> tuple[dict, list[dict], list[dict]]:
    """The graph's final state → the trace's result columns, its steps and its calls, for the store."""
    calls = state.get("calls") or []
    accepted = state["status"] == ACCEPTED
    thinking = state.get("thinking")
    pruned_thinking = state.get("pruned_thinking") if accepted else None
    pruned_answer_section = state.get("pruned_answer_section", "").strip() if accepted else None
    pruned_response = join_response(pruned_thinking, pruned_answer_section) if accepted else None
    result = {
        "status": state["status"],
        "reason": state.get("reason"),
        "attempts": state.get("attempt") or 0,
        "original_answer": state.get("original_answer"),
        "pruned_answer": state.get("pruned_answer"),
        "original_thinking": thinking,
        "original_answer_section": state.get("answer_section"),
        "pruned_thinking": pruned_thinking,
        "pruned_answer_section": pruned_answer_section,
        "pruned_response": pruned_response,
        "thinking_tokens_before": counter.count(thinking) if thinking else None,
        "thinking_tokens_after": counter.count(pruned_thinking) if accepted else None,
        "response_tokens_before": _response_tokens_before(state, trace, counter),
        "response_tokens_after": _response_tokens_after(state, counter, pruned_response) if accepted else None,
        "teacher_input_tokens": _teacher_tokens(calls, "input_tokens"),
        "teacher_output_tokens": _teacher_tokens(calls, "output_tokens"),
        "teacher_calls": sum(1 for c in calls if c["llm"] and not c.get("reused_run")),
        "reused_calls": sum(1 for c in calls if c.get("reused_run")),
        "reused_input_tokens": _teacher_tokens(calls, "input_tokens", reused=True),
        "reused_output_tokens": _teacher_tokens(calls, "output_tokens", reused=True),
        "seconds": round(state.get("seconds", 0.0), 4),
        "checks": dumps((state.get("verdict") or {}).get("checks")),
    }
    steps = [
        {
            "attempt": state.get("attempt") or 0,
            "unit_start": step.get("unit_start"),
            "unit_end": step.get("unit_end"),
            "skill": step.get("skill"),
            "action": step.get("action"),
            "merge_group": step.get("merge_group"),
            "text": step.get("text"),
            "rewritten": step.get("rewritten"),
            "echo": step.get("echo"),
        }
        for step in state.get("steps") or []
    ]
    return result, steps, calls


def _teacher_tokens(calls: list[dict], key: str, reused: bool = False) -> int | None:
    """The trace's teacher tokens this run spent (with `reused`: those of the replies it reused instead); None
    (missing) when a teacher reply came without usage and uncounted."""
    counts = [call[key] for call in calls if call["llm"] and bool(call.get("reused_run")) == reused]
    return None if any(count is None for count in counts) else sum(counts)


def _response_tokens_before(state: dict, trace: dict, counter) -> int | None:
    """Counted by the prepare node; None when it left the record unread (too long to tokenize)."""
    if "response_tokens_before" in state:
        return state["response_tokens_before"]
    return counter.count(trace["response"])


def _response_tokens_after(state: dict, counter, pruned_response: str) -> int:
    """The verifier already counted the accepted response; count again only if it did not."""
    verdict = state.get("verdict") or {}
    counted = verdict.get("response_tokens_after") if verdict.get("passed") else None
    return counted if counted is not None else counter.count(pruned_response)


def _settle_existing_run(folder: Path, options: RunOptions) -> tuple[RunOptions, dict | None]:
    """The options to run with, and the saved config when this resumes an existing run (None: a new run).
    Nothing is written here: a refusal leaves everything as it was."""
    from drp.redaction import is_redacted

    exists = folder.exists() and not is_empty_folder(folder)
    if exists and not is_run_folder(folder):
        if not options.overwrite and (folder / DB_NAME).is_file():
            check_intact(folder / DB_NAME)  # a damaged database is named as such, not as a stranger's folder
            _check_readable(folder / DB_NAME)  # so is one damaged inside, where its list of tables spans pages
        raise RunError(
            f"{folder} exists and is not a drp run: drp never writes into or deletes it. "
            "Choose another --run-id, or move that folder"
        )
    if exists and options.overwrite:
        if folder.is_symlink():  # the link would be swapped, not the run it points to
            raise RunError(
                f"{folder} is a link: --overwrite replaces run folders only; remove the link or choose another --run-id"
            )
        # else: a new run, swapped in for the old one once complete
    elif exists and not options.resume:
        raise RunError(f"run {options.run_id!r} already exists at {folder}: pass --resume to finish it or --overwrite")
    elif exists:
        saved_config = _saved_config(folder, options.run_id)
        saved = saved_config["options"]
        if options.policy is not None and saved["policy"] != options.policy:
            raise RunError(
                f"run {options.run_id!r} used policy {saved['policy']!r}; cannot resume with {options.policy!r}"
            )
        # Resume with the run's own settings; only the concurrency, limit and teacher endpoint may change, and
        # the policy settings with --set (a policy change, refused unless allowed).
        keep = {
            "concurrency": options.concurrency,
            "workers": options.workers,
            "limit": options.limit,
            "resume": True,
            "overwrite": False,
            "allow_policy_change": options.allow_policy_change,
            "retry_failed": options.retry_failed,
            "reuse": options.reuse,
            "policy_overrides": {**(saved.get("policy_overrides") or {}), **options.policy_overrides},
        }
        legacy_url = saved.pop("teacher_url", None)  # runs stored before several endpoints were possible
        saved.setdefault("teacher_urls", [legacy_url] if legacy_url else [])
        if options.teacher_price:
            keep["teacher_price"] = options.teacher_price
        if options.teacher_urls:
            keep["teacher_urls"] = options.teacher_urls
        elif any(is_redacted(url) for url in saved["teacher_urls"]):
            raise RunError(
                f"run {options.run_id!r} used a teacher URL with credentials, which are never stored: "
                "pass --teacher-url again to resume it"
            )
        keep["source"] = _resume_source(saved["source"], options.source, options.run_id)
        known = set(RunOptions.__dataclass_fields__)
        return RunOptions(**{k: v for k, v in {**saved, **keep}.items() if k in known}), saved_config
    elif options.resume:
        raise RunError(f"nothing to resume: no run {options.run_id!r} at {folder}")
    if options.policy is None:
        options.policy = DEFAULT_POLICY
    return options, None


def _check_readable(file: Path) -> None:
    """Refuse a database SQLite finds damaged when it reads its schema (DamagedRun, naming it)."""
    import sqlite3

    from drp.store import damaged_database

    try:
        connection = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True)
        try:
            connection.execute("select name from sqlite_master").fetchall()
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        damaged = damaged_database(error)
        if damaged is not None:
            raise damaged from None


def _saved_config(folder: Path, run_id: str) -> dict:
    """The config of a complete run, or a RunError saying the run cannot be resumed."""
    from drp.store import IncompleteRun, RunNotFound

    try:
        open_run(folder).close()
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config["options"]["policy"]  # noqa: B018 - a config without its options is as good as none
        return config
    except (IncompleteRun, RunNotFound, OSError, ValueError, KeyError, TypeError):
        raise RunError(
            f"run {run_id!r} at {folder} cannot be resumed: its creation was interrupted before its "
            "settings were saved. Start it again with --overwrite"
        ) from None


def _policy_changes(options: RunOptions, saved: dict, policy) -> list[str]:
    """How the policy differs from the one the run was made with (empty: the same). A change is refused
    unless the user allowed it."""
    from drp.policy import snapshot_changes, snapshot_hash

    before = saved.get("policy") or {}
    if policy.policy_hash == (saved.get("policy_hash") or snapshot_hash(before)):
        return []
    changes = snapshot_changes(before, policy.snapshot()) or ["its content (same settings, different hash)"]
    if not options.allow_policy_change:
        raise RunError(
            f"run {options.run_id!r} was made with another version of policy {policy.name!r}; changed: "
            f"{'; '.join(changes)}. Resume with the run's policy, or pass --allow-policy-change to "
            "finish it with this one (each trace keeps the policy hash it was made with)"
        )
    return changes


def _history(saved: dict, policy, changes: list[str]) -> list[dict]:
    """The run's policies in order of use: hash, since when, prompt hashes, what changed (and, for the ones
    no longer in use, the whole snapshot)."""
    from drp.policy import snapshot_hash

    before = saved.get("policy") or {}
    history = saved.get("policy_history") or [
        {
            "hash": snapshot_hash(before),
            "since": None,
            "prompt_hashes": before.get("prompt_hashes") or {},
            "changes": [],
        }
    ]
    if changes:
        history[-1]["snapshot"] = before
        history.append(
            {"hash": policy.policy_hash, "since": now(), "prompt_hashes": policy.prompt_hashes, "changes": changes}
        )
    return history


def _resume_source(saved: str, given: str, run_id: str) -> str:
    """The input a resumed run records: its own; or, when its own is gone (moved, renamed), the one given.
    Another input than its own is refused: the run's lines came from its own."""
    if given == saved or _same_file(given, saved):
        return saved
    if _is_gone(saved):
        input_traces.check_source(given)
        return given
    raise RunError(
        f"run {run_id!r} reads {saved}, not {given}: resume it with its own input (or start a new run for this one)"
    )


def _is_gone(source: str) -> bool:
    return not Path(source).expanduser().exists() and input_traces.looks_local(source)


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).expanduser().samefile(Path(b).expanduser())
    except OSError:
        return False


def _load_policy(options: RunOptions):
    from drp.policy import load_policy
    from drp.prompting import check_templates

    policy = load_policy(options.policy, [Path(p) for p in options.prompts_dirs])
    policy = policy.with_overrides(options.policy_overrides) if options.policy_overrides else policy
    check_templates(policy)  # an unsafe or broken prompt stops the run before any trace (a PolicyError)
    return policy


def _teacher(options: RunOptions, policy, folder: Path):
    from drp.teacher import Teacher, TeacherSettings

    if not policy.uses_llm:
        return None
    if not options.teacher_urls or not options.teacher_model:
        raise RunError(
            f"policy {policy.name!r} needs a teacher LLM. Pass --teacher-url URL --teacher-model NAME "
            "(any OpenAI-compatible endpoint: OpenAI, a `vllm serve` process, or `drp serve MODEL`), "
            "or choose a policy without an LLM: --policy rules (or --policy identity)."
        )
    if options.teacher_mode not in ("online", "batch"):
        raise RunError(f"--teacher-mode is online or batch, not {options.teacher_mode!r}")
    if options.teacher_mode == "batch" and len(options.teacher_urls) > 1:
        raise RunError("batch mode sends its jobs to one endpoint: give one --teacher-url")
    for url in options.teacher_urls:
        check_teacher_url(url)
    first, *others = options.teacher_urls
    settings = TeacherSettings(
        url=first,
        extra_urls=tuple(others),
        model=options.teacher_model,
        api_key_env=options.teacher_api_key_env,
        structured_output=options.structured_output,
        timeout=options.teacher_timeout,
        max_retries=options.teacher_max_retries,
    )
    if options.teacher_mode == "batch":
        from drp.teacher.batch import BatchTransport

        transport = BatchTransport(
            settings,
            folder,
            options.run_id,
            poll_seconds=options.batch_poll_seconds,
            call_timeout=options.batch_call_timeout,
            poll_failures=options.batch_poll_failures,
            job_timeout=options.batch_job_timeout,
        )
        return Teacher(settings, transport, usage_counter=_usage_counter(options))
    return Teacher(settings, usage_counter=_usage_counter(options))


def check_teacher_url(url: str) -> None:
    """An http(s) URL with a host, or a RunError before anything is sent (a `file://` URL, a bare host name)."""
    from urllib.parse import urlsplit

    from drp.redaction import redact_url

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises here
        usable = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        usable = False
    if not usable:
        raise RunError(
            f"teacher URL {redact_url(url)!r} is not an http:// or https:// URL with a host "
            "(e.g. http://127.0.0.1:8000/v1)"
        )


def _price(options: RunOptions, teacher):
    from drp.costs import resolve_price

    if teacher is None:
        return None
    return resolve_price(options.teacher_price, options.teacher_model, options.prices_file)


def _usage_counter(options: RunOptions):
    """The teacher's tokenizer, to count the calls a server reports no usage for: --teacher-tokenizer, else the
    teacher model's own folder when it is one (a model served from a folder by `drp serve`); else None."""
    from drp.tokens import TokenCounter

    name = options.teacher_tokenizer
    folder = Path(options.teacher_model or "")
    if (
        name is None
        and options.teacher_model
        and any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))
    ):
        name = str(folder)
    return TokenCounter(name) if name else None


def _write_config(
    folder: Path,
    store: RunStore,
    options: RunOptions,
    policy,
    counter,
    teacher,
    history: list[dict],
    input_lines: int | None = None,
) -> None:
    """config.json (replaced whole, never half-written), then the run's row."""
    from drp.redaction import redact_url

    urls = [redact_url(url) for url in options.teacher_urls]  # credentials stay out
    price = _price(options, teacher)
    stored_options = {**asdict(options), "teacher_urls": urls}
    config = {
        "run_id": options.run_id,
        "options": stored_options,
        "policy": policy.snapshot(),
        "policy_hash": policy.policy_hash,
        "policy_history": history,
        "teacher": teacher.settings.public() if teacher else None,
        "tokenizer": counter.name,
        "teacher_tokenizer": teacher.usage_counter.name if teacher and teacher.usage_counter else None,
        "price": price.public() if price else None,
    }
    with atomic_write(folder / "config.json") as out:
        out.write(json.dumps(config, indent=2, ensure_ascii=False))
    row = {
        "policy": policy.name,
        "input": options.source,
        "teacher_url": " ".join(urls) if teacher else None,
        "teacher_model": options.teacher_model if teacher else None,
        "tokenizer": counter.name,
        "config": dumps(config),
        "prompt_hashes": dumps(policy.prompt_hashes),
        "policy_hash": policy.policy_hash,
        "policy_history": dumps([{k: v for k, v in entry.items() if k != "snapshot"} for entry in history]),
    }
    if input_lines is not None:
        row["input_lines"] = input_lines
    store.save_run(options.run_id, row)


def write_pruned_jsonl(store: RunStore, folder: Path) -> Path:
    """Accepted results, rebuilt from the database each time (atomic replace: never half-written). Each
    record names the policy it was made with (a run resumed under a changed policy holds several)."""
    run = store.run_row()
    history = json.loads(run.get("policy_history") or "[]")
    prompt_hashes = {entry["hash"]: entry.get("prompt_hashes") for entry in history}
    first = history[0]["hash"] if history else None  # traces made before policy hashes were kept
    records = store.accepted()
    for record in records:
        made_with = record.get("policy_hash") or first
        record.update(
            policy=run.get("policy"),
            policy_hash=made_with,
            prompt_hashes=prompt_hashes.get(made_with) or json.loads(run.get("prompt_hashes") or "{}"),
        )
    return write_jsonl(folder / "pruned.jsonl", records)


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="trace", dynamic_ncols=True, desc="pruning")
