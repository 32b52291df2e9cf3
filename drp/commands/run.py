"""`drp run`: the pruning graph over a dataset of traces."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from drp.commands.option_checks import above_zero
from drp.endpoint import RETRY_POLICY, StructuredMethod
from drp.errors import EXIT_FAILURES, EXIT_INTERRUPTED
from drp.input_traces import DEFAULT_MAX_RECORD_CHARS


def run(
    traces: Annotated[
        str, typer.Argument(help="Trace JSONL file, a `datasets` folder, or a Hugging Face dataset name.")
    ],
    policy: Annotated[
        str | None,
        typer.Option(
            help="Policy name (see `drp prompts list`) or folder. Default: skill-aware; on --resume, the run's own."
        ),
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run-id",
            help="Run name: its folder under $DRP_RUNS_DIR (letters, digits, '.', '_', '-'; default: a timestamp).",
        ),
    ] = None,
    teacher_url: Annotated[
        list[str] | None,
        typer.Option(
            help=(
                "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1. Give it several times for several "
                "endpoints: each request goes to the least busy one, and one that keeps failing is set aside for a "
                "while."
            ),
            envvar="DRP_TEACHER_URL",
        ),
    ] = None,
    teacher_urls_file: Annotated[
        Path | None,
        typer.Option(
            help="A file of teacher URLs, one per line (lines starting with # skipped), added to --teacher-url."
        ),
    ] = None,
    teacher_model: Annotated[
        str | None, typer.Option(help="Teacher model name on that endpoint.", envvar="DRP_TEACHER_MODEL")
    ] = None,
    teacher_api_key_env: Annotated[
        str, typer.Option(help="Environment variable holding the API key (the key itself is never a flag).")
    ] = "OPENAI_API_KEY",
    structured_output: Annotated[
        StructuredMethod, typer.Option(help="How the server takes structured output (what it supports).")
    ] = "json_schema",
    teacher_timeout: Annotated[
        float | None,
        typer.Option(
            help=(
                "Total deadline per teacher request, in seconds: a reply not complete by then is abandoned, never "
                "re-sent. Default: 60 s + 1 s per 100 prompt characters + 1 s per 5 output tokens the request allows."
            ),
            callback=above_zero,
        ),
    ] = None,
    teacher_max_retries: Annotated[
        int,
        typer.Option(
            min=0,
            help=(
                f"Quick retries per teacher request, within its deadline ({RETRY_POLICY}); a request that ran into its "
                "deadline is never re-sent."
            ),
        ),
    ] = 2,
    teacher_mode: Annotated[
        Literal["online", "batch"],
        typer.Option(
            help=(
                "online: one request at a time as traces need them. batch: the OpenAI Batch API (half the price, up to "
                "24 h per round): every pending trace at once, each graph stage one batch job; a killed run resumes "
                "the same jobs."
            )
        ),
    ] = "online",
    batch_poll_seconds: Annotated[
        float, typer.Option(help="Batch mode: seconds between looks at a running job.", callback=above_zero)
    ] = 30.0,
    batch_call_timeout: Annotated[
        float,
        typer.Option(
            help=(
                "Batch mode: total deadline, in seconds, of each Files/Batches API call (poll, create, cancel; an "
                "upload or result download gets 1 s more per MB it may carry); one that runs past it is a failed call."
            ),
            callback=above_zero,
        ),
    ] = 60.0,
    batch_poll_failures: Annotated[
        int,
        typer.Option(
            min=1,
            help=(
                "Batch mode: failed polls in a row (errors, deadlines, result files that cannot be downloaded) that "
                "end a job; its requests go to the next round."
            ),
        ),
    ] = 10,
    batch_job_timeout: Annotated[
        float,
        typer.Option(
            help=(
                "Batch mode: seconds a job may take from its submission (default 26 h: the 24-hour window and time to "
                "finish); a job still running then is cancelled and its requests go to the next round."
            ),
            callback=above_zero,
        ),
    ] = 93600.0,
    teacher_price: Annotated[
        str | None,
        typer.Option(
            help=(
                "What the teacher costs: IN,OUT per million tokens, or a name from the price table (drp/prices.yaml; "
                "default: the entry named like --teacher-model, if any). Stats and reports show cost per trace and per "
                "run."
            )
        ),
    ] = None,
    prices_file: Annotated[
        Path | None,
        typer.Option(
            help=(
                "Your own price table (YAML, the shape of drp/prices.yaml), added to the built-in one; also DRP_PRICES."
            )
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N input records.")] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Traces in flight at once.")] = 8,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes sharing the traces (one core each); concurrency is split among them.")
    ] = 1,
    max_record_chars: Annotated[
        int,
        typer.Option(min=1, help="A record whose question and response hold more characters ends as too_long, unread."),
    ] = DEFAULT_MAX_RECORD_CHARS,
    resume: Annotated[bool, typer.Option(help="Finish an interrupted run; finished traces are not redone.")] = False,
    overwrite: Annotated[
        bool,
        typer.Option(help="Replace an existing run with this id (only ever a drp run), once the new one is set up."),
    ] = False,
    allow_policy_change: Annotated[
        bool,
        typer.Option(
            help=(
                "With --resume: finish the run under a policy that differs from its own (prompts or settings); both "
                "are recorded."
            )
        ),
    ] = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            help=(
                "With --resume: try again the traces that failed on a teacher error (timeouts, HTTP errors, unusable "
                "replies); --no-retry-failed keeps them failed."
            )
        ),
    ] = True,
    tokenizer: Annotated[
        str | None,
        typer.Option(help="Tokenizer for token counts (path or hub id; default: the R1-Distill-Qwen one)."),
    ] = None,
    teacher_tokenizer: Annotated[
        str | None,
        typer.Option(
            help=(
                "The teacher's tokenizer, to count teacher calls the server reports no usage for (default: the teacher "
                "model's folder when it is one; else such calls' tokens are shown as missing)."
            )
        ),
    ] = None,
    field: Annotated[
        list[str] | None, typer.Option(help="Remap an input field: OURS=THEIRS, e.g. question=problem.")
    ] = None,
    split: Annotated[str, typer.Option(help="Dataset split, for `datasets` inputs.")] = "train",
    prompts_dir: Annotated[list[Path] | None, typer.Option(help="Extra folder(s) of policies, searched first.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help=(
                "Override a policy setting: KEY=YAML, e.g. max_retries=4 or answer_section=keep. KEY=V1,V2,… sweeps: "
                "one child run RUN_ID.KEY-V per value, each reusing the teacher replies of those before it, then a "
                "side-by-side table."
            ),
        ),
    ] = None,
    reuse: Annotated[
        list[str] | None,
        typer.Option(
            help=(
                "Answer a teacher request from this run's stored reply when it asked exactly the same (messages, "
                "model, sampling, schema, structured-output mode): no network call. Give it several times for several "
                "runs. Retries and failed replies are always asked again."
            )
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
    estimate: Annotated[
        bool,
        typer.Option(
            help=(
                "Spend only a sample: prune --estimate-sample traces (drawn with --seed) in a temporary run, then "
                "print the projected teacher tokens, time and cost of the whole input, with 95% intervals."
            )
        ),
    ] = False,
    estimate_sample: Annotated[int, typer.Option(help="Traces in the --estimate sample.", min=1)] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the --estimate sample (the same seed draws the same traces).")] = 0,
) -> None:
    """Prune every trace: segment → classify → prune → verify (with retries), recording every agent call."""
    from datetime import datetime

    from drp.input_traces import parse_field_map
    from drp.paths import run_dir, runs_dir
    from drp.policy import parse_overrides
    from drp.run_config import BatchConfig, ExecutionConfig, PolicyConfig, RunConfig, SourceConfig, TeacherConfig
    from drp.run_place import RunPlace
    from drp.sweep import split_sweeps

    plain_sets, swept = split_sweeps(set_ or [])
    config = RunConfig(
        source=SourceConfig(
            path=traces,
            field_map=parse_field_map(field or []),
            split=split,
            limit=limit,
            max_record_chars=max_record_chars,
        ),
        policy=PolicyConfig(
            name=policy,
            prompts_dirs=tuple(str(p) for p in prompts_dir or []),
            overrides=parse_overrides(plain_sets),
            allow_change=allow_policy_change,
        ),
        teacher=TeacherConfig(
            urls=(*(teacher_url or []), *read_urls_file(teacher_urls_file)),
            model=teacher_model,
            api_key_env=teacher_api_key_env,
            structured_output=structured_output,
            timeout=teacher_timeout,
            max_retries=teacher_max_retries,
            mode=teacher_mode,
            batch=BatchConfig(
                poll_seconds=batch_poll_seconds,
                call_timeout=batch_call_timeout,
                poll_failures=batch_poll_failures,
                job_timeout=batch_job_timeout,
            ),
            price=teacher_price,
            prices_file=str(prices_file) if prices_file else None,
            tokenizer=teacher_tokenizer,
            reuse=tuple(str(run_dir(name).resolve()) for name in reuse or []),
        ),
        tokenizer=tokenizer,
        execution=ExecutionConfig(
            concurrency=concurrency, workers=workers, resume=resume, overwrite=overwrite, retry_failed=retry_failed
        ),
    )
    if estimate and swept:
        from drp.errors import UserError

        raise UserError("--estimate projects one run: leave the sweep (--set KEY=V1,V2) out of it")
    if estimate:
        from drp.estimate import describe
        from drp.estimate import estimate as estimate_run

        typer.echo(describe(estimate_run(config, estimate_sample, seed, progress=not quiet)))
        return
    # The run's place is read from the environment here, once; everything below is handed it.
    place = RunPlace.under(runs_dir(), datetime.now().strftime("%Y%m%d-%H%M%S") if run_id is None else run_id)
    if swept:
        _sweep(config, place, swept, traces, quiet)
    else:
        _one_run(config, place, traces, quiet)


def _sweep(config, place, swept: dict, traces: str, quiet: bool) -> None:
    """One child run per value swept (drp.sweep), then their table."""
    from drp.sweep import run_sweep

    try:
        summaries, table = run_sweep(config, place, swept, progress=not quiet)
    except KeyboardInterrupt:
        typer.echo(
            "\ninterrupted: each child run finished so far is kept; finish one with "
            f"`drp run {traces} --run-id {place.run_id}.KEY-VALUE --resume`",
            err=True,
        )
        raise typer.Exit(EXIT_INTERRUPTED) from None
    for summary in summaries:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items()))
        typer.echo(f"run {summary.run_id}: {counts} ({summary.processed} processed in {summary.seconds:.1f}s)")
    typer.echo(table)
    if any(summary.failed for summary in summaries):
        raise typer.Exit(EXIT_FAILURES)


def _one_run(config, place, traces: str, quiet: bool) -> None:
    from drp.runner import run as run_graph

    try:
        summary = run_graph(config, place, progress=not quiet)
    except KeyboardInterrupt:
        # Finished traces are already stored; the ones in flight were not, and will be redone. A run interrupted
        # while it was being set up does not exist at all.
        if place.folder.is_dir():
            typer.echo(f"\ninterrupted: finish with `drp run {traces} --run-id {place.run_id} --resume`", err=True)
        else:
            typer.echo(f"\ninterrupted before run {place.run_id!r} was set up: nothing was kept", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items()))
    rate = summary.processed / summary.seconds if summary.seconds else 0.0
    typer.echo(
        f"run {summary.run_id}: {counts} ({summary.processed} processed in {summary.seconds:.1f}s, {rate:.1f} traces/s)"
    )
    typer.echo(f"folder: {summary.path}   next: drp stats {summary.run_id} · drp logs list {summary.run_id}")
    if summary.counts.get("pending"):
        typer.echo(f"{summary.counts['pending']} traces still pending (--limit): finish with --resume", err=True)
    if summary.failed:
        typer.echo(f"{summary.failed} traces failed: drp logs list {summary.run_id} --status failed", err=True)
        raise typer.Exit(EXIT_FAILURES)


def read_urls_file(path: Path | None) -> list[str]:
    """One URL per line; blank lines and lines starting with `#` skipped."""
    from drp.errors import UserError

    if path is None:
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read --teacher-urls-file {path}: {exc}") from None
    urls = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not urls:
        raise UserError(f"--teacher-urls-file {path} holds no URL")
    return urls


def register(app: typer.Typer) -> None:
    app.command("run")(run)
