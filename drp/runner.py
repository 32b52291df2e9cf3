"""Run the pruning graph over a dataset: ingest records, process pending traces with bounded
concurrency, write each finished trace atomically, resume where a killed run stopped."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from drp import records as records_module
from drp.paths import run_dir
from drp.store import TERMINAL, dumps, now, open_db
from drp.text import join_response


DEFAULT_POLICY = "skill-aware"


class RunError(Exception):
    """A problem with the run as a whole (bad options, existing run): reported before any trace is touched."""


@dataclass
class RunOptions:
    source: str
    run_id: str
    policy: str | None = None  # None: skill-aware for a new run, the run's own policy on --resume
    teacher_url: str | None = None
    teacher_model: str | None = None
    teacher_api_key_env: str = "OPENAI_API_KEY"
    structured_output: str = "json_schema"
    teacher_timeout: float = 120.0
    teacher_max_retries: int = 3
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


@dataclass
class RunSummary:
    run_id: str
    path: Path
    processed: int
    counts: dict[str, int]
    seconds: float

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)


def run(options: RunOptions, progress: bool = True) -> RunSummary:
    """Prune every pending trace of a run. With `workers` > 1 the pending traces are shared among forked
    worker processes (each with its own event loop and database connection): one Python process saturates
    one core long before a fast teacher does."""
    folder = run_dir(options.run_id)
    options = _settle_existing_run(folder, options)
    policy = _load_policy(options)
    _teacher(options, policy)  # refuse an LLM policy without a teacher before touching anything
    db = open_db(folder)
    counter = _counter(options)
    _write_config(folder, db, options, policy, counter)
    _ingest(db, options)
    last_line = _limit_line(db, options.limit) if options.limit is not None else None
    pending = [row["id"] for row in db.query("select id, line from traces where status = 'pending' order by line")
               if last_line is None or row["line"] <= last_line]
    started = time.perf_counter()
    bar = _progress_bar(len(pending), progress)
    if options.workers <= 1 or len(pending) < 2:
        asyncio.run(_process_ids(options, folder, policy, pending, options.concurrency, bar))
    else:
        _process_in_workers(options, folder, policy, pending, db, bar)
    bar.close()
    seconds = time.perf_counter() - started
    _finish_run(db, options.run_id, seconds)
    write_pruned_jsonl(db, folder, policy)
    counts = {r["status"]: r["n"] for r in db.query("select status, count(*) n from traces group by status")}
    db.close()
    return RunSummary(options.run_id, folder, len(pending), counts, seconds)


async def _process_ids(options: RunOptions, folder: Path, policy, ids: list[str], concurrency: int, bar=None) -> None:
    """Run the graph over these traces, `concurrency` at a time, storing each as soon as it ends."""
    from drp.graph.build import build_graph
    from drp.graph.context import RunContext

    db = open_db(folder)
    counter = _counter(options)
    ctx = RunContext(policy=policy, teacher=_teacher(options, policy), counter=counter)
    graph = build_graph()
    queue: asyncio.Queue = asyncio.Queue()
    for trace_id in ids:
        queue.put_nowait(trace_id)

    async def worker():
        while not queue.empty():
            row = db["traces"].get(queue.get_nowait())
            result = await _process(graph, ctx, row)
            _store_result(db, row, result, counter)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(result.get("status") or "")

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    db.close()


def _process_in_workers(options: RunOptions, folder: Path, policy, ids: list[str], db, bar) -> None:
    """Fork workers over interleaved shares of the pending traces; follow their progress in the database."""
    import multiprocessing

    context = multiprocessing.get_context("fork")  # the parent has imported everything: forking is cheap
    workers = min(options.workers, len(ids))
    per_worker = max(1, -(-options.concurrency // workers))
    processes = [
        context.Process(target=_worker_main, args=(options, folder, policy, ids[index::workers], per_worker))
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    done_before = _terminal_count(db)
    try:
        while any(process.is_alive() for process in processes):
            time.sleep(0.2)
            bar.n = _terminal_count(db) - done_before
            bar.refresh()
    except KeyboardInterrupt:
        for process in processes:
            process.terminate()
        raise
    for process in processes:
        process.join()
    bar.n = _terminal_count(db) - done_before
    failed = [p.exitcode for p in processes if p.exitcode]
    if failed:
        raise RunError(f"{len(failed)} worker process(es) died (exit codes {failed}); finish with --resume")


def _worker_main(options: RunOptions, folder: Path, policy, ids: list[str], concurrency: int) -> None:
    asyncio.run(_process_ids(options, folder, policy, ids, concurrency))


def _terminal_count(db) -> int:
    marks = ", ".join("?" for _ in TERMINAL)
    return db.execute(f"select count(*) from traces where status in ({marks})", TERMINAL).fetchone()[0]


def _counter(options: RunOptions):
    from drp.tokens import TokenCounter

    return TokenCounter(options.tokenizer)


async def _process(graph, ctx, row: dict) -> dict:
    from drp.prompting import PolicyTemplateError

    trace = {k: row[k] for k in ("id", "question", "response", "gold_answer")}
    started = time.perf_counter()
    try:
        state = await graph.ainvoke({"trace": trace, "calls": []}, context=ctx)
    except PolicyTemplateError as exc:  # a template that fails only on some traces: this trace, not the run
        state = {"status": "failed", "reason": f"policy_error: {exc}", "calls": []}
    except Exception as exc:  # a bug must not take the other traces down: record it on this trace
        state = {"status": "failed", "reason": f"internal_error: {type(exc).__name__}: {exc}", "calls": []}
    state["seconds"] = time.perf_counter() - started
    if not state.get("status"):
        state.update(status="failed", reason="internal_error: the graph ended without a verdict")
    return state


def _store_result(db, row: dict, state: dict, counter) -> None:
    """One transaction per trace: its calls, its steps and its terminal status land together or not at all."""
    calls = state.get("calls") or []
    accepted = state["status"] == "accepted"
    thinking = state.get("thinking")
    pruned_thinking = state.get("pruned_thinking") if accepted else None
    pruned_response = join_response(pruned_thinking, state.get("pruned_answer_section", "")) if accepted else None
    update = {
        "status": state["status"], "reason": state.get("reason"), "attempts": state.get("attempt") or 0,
        "original_answer": state.get("original_answer"), "pruned_answer": state.get("pruned_answer"),
        "original_thinking": thinking, "original_answer_section": state.get("answer_section"),
        "pruned_thinking": pruned_thinking, "pruned_response": pruned_response,
        "thinking_tokens_before": counter.count(thinking) if thinking else None,
        "thinking_tokens_after": counter.count(pruned_thinking) if accepted else None,
        "response_tokens_before": state.get("response_tokens_before") or counter.count(row["response"]),
        "response_tokens_after": _response_tokens_after(state, counter, pruned_response) if accepted else None,
        "teacher_input_tokens": sum(c["input_tokens"] or 0 for c in calls),
        "teacher_output_tokens": sum(c["output_tokens"] or 0 for c in calls),
        "teacher_calls": sum(1 for c in calls if c["model"] not in ("rules", "deterministic")),
        "seconds": round(state.get("seconds", 0.0), 4), "finished_at": now(),
    }
    step_rows = [
        {
            "trace_id": row["id"], "step": number, "attempt": state.get("attempt") or 0,
            "unit_start": step.get("unit_start"), "unit_end": step.get("unit_end"), "skill": step.get("skill"),
            "action": step.get("action"), "merge_group": step.get("merge_group"), "text": step.get("text"),
            "rewritten": step.get("rewritten"),
        }
        for number, step in enumerate(state.get("steps") or [], start=1)
    ]
    call_rows = [
        {**call, "trace_id": row["id"], "seq": seq, "messages": dumps(call["messages"]), "parsed": dumps(call["parsed"])}
        for seq, call in enumerate(calls, start=1)
    ]
    with db.conn:
        db.execute("delete from steps where trace_id = ?", [row["id"]])
        db.execute("delete from calls where trace_id = ?", [row["id"]])
        if step_rows:
            db["steps"].insert_all(step_rows)
        if call_rows:
            db["calls"].insert_all(call_rows)
        db["traces"].update(row["id"], update)


def _response_tokens_after(state: dict, counter, pruned_response: str) -> int:
    """The verifier already counted the accepted response; count again only if it did not."""
    verdict = state.get("verdict") or {}
    counted = verdict.get("response_tokens_after") if verdict.get("passed") else None
    return counted if counted is not None else counter.count(pruned_response)


def _ingest(db, options: RunOptions) -> None:
    """Every input record gets exactly one row; a resumed run adds only rows it has not seen."""
    known = {r["id"] for r in db.query("select id from traces")}
    batch = []
    for loaded in records_module.load(options.source, options.field_map, options.split):
        if loaded.id in known:
            continue
        known.add(loaded.id)
        if loaded.record is None:
            batch.append({"id": loaded.id, "line": loaded.line, "status": "failed", "reason": loaded.error,
                          "attempts": 0, "finished_at": now()})
        else:
            rec = loaded.record
            batch.append({"id": rec["id"], "line": loaded.line, "question": rec["question"], "response": rec["response"],
                          "gold_answer": rec["gold_answer"], "extra": dumps(rec["extra"]), "status": "pending",
                          "attempts": 0})
        if len(batch) >= 500:
            db["traces"].insert_all(batch)
            batch = []
    if batch:
        db["traces"].insert_all(batch)


def _limit_line(db, limit: int) -> int:
    """`--limit N` means the first N input records (by line), terminal or not."""
    rows = list(db.query("select line from traces order by line limit 1 offset ?", [max(limit - 1, 0)]))
    return rows[0]["line"] if rows and limit > 0 else 0


def _settle_existing_run(folder: Path, options: RunOptions) -> RunOptions:
    from drp.redaction import is_redacted

    exists = (folder / "drp.db").exists()
    if exists and options.overwrite:
        shutil.rmtree(folder)
    elif exists and not options.resume:
        raise RunError(f"run {options.run_id!r} already exists at {folder}: pass --resume to finish it or --overwrite")
    elif exists and options.resume:
        saved = json.loads((folder / "config.json").read_text())["options"]
        if options.policy is not None and saved["policy"] != options.policy:
            raise RunError(f"run {options.run_id!r} used policy {saved['policy']!r}; cannot resume with {options.policy!r}")
        # Resume with the run's own settings; only the concurrency, limit and teacher endpoint may change.
        keep = {"concurrency": options.concurrency, "workers": options.workers, "limit": options.limit,
                "resume": True, "overwrite": False}
        if options.teacher_url:
            keep["teacher_url"] = options.teacher_url
        elif is_redacted(saved.get("teacher_url")):
            raise RunError(f"run {options.run_id!r} used a teacher URL with credentials, which are never stored: "
                           "pass --teacher-url again to resume it")
        merged = {**saved, **keep}
        return RunOptions(**merged)
    elif options.resume:
        raise RunError(f"nothing to resume: no run {options.run_id!r} at {folder}")
    if options.policy is None:
        options.policy = DEFAULT_POLICY
    return options


def _load_policy(options: RunOptions):
    from drp.policy import load_policy

    try:
        policy = load_policy(options.policy, [Path(p) for p in options.prompts_dirs])
    except (KeyError, FileNotFoundError, ValueError) as exc:
        raise RunError(str(exc).strip('"')) from exc
    if options.policy_overrides:
        data = policy.model_dump()
        for dotted, value in options.policy_overrides.items():
            target = data
            *parents, last = dotted.split(".")
            for key in parents:
                target = target[key]
            target[last] = value
        policy = type(policy).model_validate(data)
    from drp.prompting import PolicyTemplateError, check_templates

    try:
        check_templates(policy)  # an unsafe or broken prompt stops the run before any trace
    except PolicyTemplateError as exc:
        raise RunError(str(exc)) from exc
    return policy


def _teacher(options: RunOptions, policy):
    from drp.llm import Teacher, TeacherSettings

    if not policy.uses_llm:
        return None
    if not options.teacher_url or not options.teacher_model:
        raise RunError(
            f"policy {policy.name!r} needs a teacher LLM. Pass --teacher-url URL --teacher-model NAME "
            "(any OpenAI-compatible endpoint: OpenAI, a `vllm serve` process, or `drp serve MODEL`), "
            "or choose a policy without an LLM: --policy rules (or --policy identity)."
        )
    return Teacher(
        TeacherSettings(
            url=options.teacher_url, model=options.teacher_model, api_key_env=options.teacher_api_key_env,
            structured_output=options.structured_output, timeout=options.teacher_timeout,
            max_retries=options.teacher_max_retries,
        )
    )


def _write_config(folder: Path, db, options: RunOptions, policy, counter) -> None:
    from drp.redaction import redact_url

    teacher = _teacher(options, policy)
    stored_options = {**asdict(options), "teacher_url": redact_url(options.teacher_url)}  # credentials stay out
    config = {
        "run_id": options.run_id, "options": stored_options, "policy": policy.snapshot(),
        "teacher": teacher.settings.public() if teacher else None, "tokenizer": counter.name,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
    existing = db["runs"].count_where("id = ?", [options.run_id]) if "runs" in db.table_names() else 0
    row = {
        "id": options.run_id, "policy": policy.name, "input": options.source,
        "teacher_url": redact_url(options.teacher_url) if teacher else None,
        "teacher_model": options.teacher_model if teacher else None, "tokenizer": counter.name,
        "config": dumps(config), "prompt_hashes": dumps(policy.prompt_hashes), "updated_at": now(),
    }
    if existing:
        db["runs"].update(options.run_id, row)
    else:
        db["runs"].insert({**row, "created_at": now(), "wall_seconds": 0.0, "sessions": 0})


def _finish_run(db, run_id: str, seconds: float) -> None:
    current = db["runs"].get(run_id)
    db["runs"].update(run_id, {
        "wall_seconds": (current["wall_seconds"] or 0) + seconds, "sessions": (current["sessions"] or 0) + 1,
        "updated_at": now(),
    })


def write_pruned_jsonl(db, folder: Path, policy) -> Path:
    """Accepted results, rebuilt from the database each time (atomic replace: never half-written)."""
    target = folder / "pruned.jsonl"
    partial = folder / "pruned.jsonl.partial"
    with partial.open("w", encoding="utf-8") as out:
        for row in db.query("select * from traces where status = 'accepted' order by line"):
            answer_section = row["pruned_response"].partition("\n</think>\n\n")[2]
            record = {
                "id": row["id"], "question": row["question"], "gold_answer": row["gold_answer"],
                "original_answer": row["original_answer"], "pruned_answer": row["pruned_answer"],
                "thinking": row["pruned_thinking"], "answer_section": answer_section,
                "response": row["pruned_response"], "original_response": row["response"], "policy": policy.name,
                "prompt_hashes": policy.prompt_hashes,
                "tokens": {
                    "thinking_before": row["thinking_tokens_before"], "thinking_after": row["thinking_tokens_after"],
                    "response_before": row["response_tokens_before"], "response_after": row["response_tokens_after"],
                },
                "attempts": row["attempts"], "extra": json.loads(row["extra"] or "{}"),
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    partial.replace(target)
    return target


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="trace", dynamic_ncols=True, desc="pruning")
