"""`drp generate`: the student's own long chains of thought on training problems (the first stage of DRP).

Every sample goes to OUT's side file `<stem>.samples.jsonl` (append-only: the resume point); OUT itself is
then rewritten with the kept samples, in the trace format `drp run` reads (id, question, response,
gold_answer, plus the model and decoding that produced it).

Resuming means appending to generate's own samples file: an OUT or a samples file that generate did not
write is never replaced without `--overwrite`, and the problems file never is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from drp.errors import UserError
from drp.evals.problem_sets import Fields, load_benchmark
from drp.evals.scoring import grade
from drp.evals.templates import FAMILIES, fill_template, resolve_template
from drp.jsonl import read_lines, write_jsonl
from drp.layout import THINK_CLOSE
from drp.sampling.job import SamplingJob, SamplingSettings, tokenizer_for
from drp.sampling.pool import Task
from drp.sampling.samples_file import read_records

KEEP = ("correct", "all")


class GenerateError(UserError):
    """Bad settings or input: reported to the user as is."""


@dataclass(kw_only=True)
class GenerateSettings(SamplingSettings):
    problems: str
    n: int = 4
    keep: str = "correct"
    require_think: bool = False
    fields: Fields = field(default_factory=Fields)
    seed: int = 0


@dataclass
class GenerateOutcome:
    out: Path
    samples_path: Path
    samples: int
    correct: int
    kept: int
    length_capped: int
    no_answer: int
    failed: int
    todo: int
    aborted: str | None
    interrupted: bool
    wall_s: float


def samples_path_for(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".jsonl") + ".samples.jsonl")


def _key(record: dict) -> tuple:
    return (str(record.get("problem_id")), record.get("sample"))


def run_generate(settings: GenerateSettings, echo: Callable[[str], None] = print) -> GenerateOutcome:
    from drp.tokens import TokenCounter

    started = time.perf_counter()
    if settings.keep not in KEEP:
        raise GenerateError(f"--keep must be one of {', '.join(KEEP)}, not {settings.keep!r}")
    _check_outputs(settings)
    label, template = resolve_template(settings.prompt_template)
    benchmark = load_benchmark(settings.problems, settings.data_dir, settings.source, settings.limit, settings.fields)
    if settings.keep == "correct":
        no_gold = [p.id for p in benchmark.problems if p.gold is None]
        if no_gold:
            raise GenerateError(
                f"{len(no_gold)} problems have no gold answer (e.g. {no_gold[0]}) to grade against: "
                "map the answer field (--answer-field) or use --keep all"
            )
    tokenizer_name = tokenizer_for(settings.endpoint.model, settings.tokenizer)
    # A custom template is recorded in full: resuming with an edited template must be refused.
    settings_record = {
        "model": settings.endpoint.model,
        "prompt_template": label if label in FAMILIES else template,
        "temperature": settings.decoding.temperature,
        "top_p": settings.decoding.top_p,
        "max_tokens": settings.decoding.max_tokens,
    }
    samples_path = samples_path_for(settings.out)
    existing = [] if settings.overwrite else list(read_records(samples_path))
    _check_same_settings(samples_path, existing, settings_record)

    endpoint = settings.open_endpoint(echo)
    if settings.overwrite:
        samples_path.unlink(missing_ok=True)
        settings.out.unlink(missing_ok=True)
    counter = TokenCounter(tokenizer_name)
    job = SamplingJob("generate", samples_path, _key, _recorder(settings, benchmark.name, settings_record, counter))
    planned = (
        Task((p.id, k), [{"role": "user", "content": fill_template(template, p.question)}], settings.seed + k, p)
        for p in benchmark.problems
        for k in range(settings.n)
    )
    about = f"for {len(benchmark.problems)} problems from {benchmark.source}"
    outcome = job.run(planned, job.finished(existing), endpoint, settings, echo, about)

    order = {(p.id, k): i for i, (p, k) in enumerate((p, k) for p in benchmark.problems for k in range(settings.n))}
    latest = [r for r in job.latest().values() if _key(r) in order]
    done = sorted((r for r in latest if not r.get("error")), key=lambda r: order[_key(r)])
    kept = [r for r in done if _keep(r, settings)]
    _write_atomic(settings.out, kept)
    return GenerateOutcome(
        settings.out,
        samples_path,
        len(done),
        sum(bool(r["correct"]) for r in done),
        len(kept),
        sum(r.get("finish_reason") == "length" for r in done),
        sum(r.get("extracted_answer") is None for r in done),
        sum(1 for r in latest if r.get("error")),
        outcome.todo,
        outcome.aborted,
        outcome.interrupted,
        time.perf_counter() - started,
    )


def _recorder(settings: GenerateSettings, source: str, settings_record: dict, counter) -> Callable:
    """A completion → its sample record: the trace `drp run` reads, with how it was drawn and graded."""

    def record(task: Task, completion) -> dict:
        problem, k = task.payload, task.key[1]
        record = {
            "id": problem.id if settings.n == 1 else f"{problem.id}_s{k}",
            "question": problem.question,
            "gold_answer": problem.gold,
            "problem_id": problem.id,
            "sample": k,
            "seed": task.seed,
            "source": source,
            **settings_record,
            "prompt": task.messages[-1]["content"],
        }
        if completion.error:
            record.update(error=completion.error)
        else:
            verdict = grade(completion.text, problem.gold)
            record.update(
                response=completion.text,
                finish_reason=completion.finish_reason,
                extracted_answer=verdict.extracted,
                correct=verdict.correct,
                tokens=counter.count(completion.text),
                server_completion_tokens=completion.completion_tokens,
                error=None,
            )
        for name, value in problem.extra.items():  # the problem file's own fields travel along
            record.setdefault(name, value)
        return record

    return record


def _keep(record: dict, settings: GenerateSettings) -> bool:
    if settings.keep == "all":
        return True
    complete = record.get("finish_reason") != "length"
    thinks = not settings.require_think or THINK_CLOSE in (record.get("response") or "")
    return bool(record.get("correct")) and complete and thinks


def _check_outputs(settings: GenerateSettings) -> None:
    """OUT and its samples file are generate's own (or absent); neither is the problems file."""
    from drp.outputs import check_output

    samples = samples_path_for(settings.out)
    problems = Path(settings.problems)
    for path in (settings.out, samples):
        check_output(path, "generate")
    for path in (settings.out, samples):
        if problems.is_file() and path.exists() and path.resolve() == problems.resolve():
            raise GenerateError(
                f"--out {settings.out} would write over the problems file {problems}: choose another --out"
            )
        if path.is_dir():
            example = path / "traces.jsonl" if path == settings.out else "another --out"
            raise GenerateError(f"{path} is a folder: --out names the trace file to write, e.g. --out {example}")
    if settings.overwrite:
        return
    for path, what in ((samples, "samples"), (settings.out, "traces")):
        if path.exists() and not _written_by_generate(path):
            raise GenerateError(
                f"{path} exists and is not a file of drp generate's {what}: pass --overwrite to replace "
                "it, or choose another --out"
            )
    if settings.out.exists() and settings.out.stat().st_size and not samples.exists():
        raise GenerateError(
            f"{settings.out} exists without its samples file {samples.name}, so there is nothing to "
            "resume: pass --overwrite to replace it, or choose another --out"
        )


def _written_by_generate(path: Path) -> bool:
    """Every record names its problem and sample number (an empty file, or a last line cut by a kill, too)."""
    try:
        lines = list(read_lines(path))
    except OSError:
        return False
    for index, line in enumerate(lines):
        if isinstance(line.error, UnicodeDecodeError):
            return False
        if line.error is not None:
            if index == len(lines) - 1:
                continue
            return False
        if not (isinstance(line.record, dict) and "problem_id" in line.record and "sample" in line.record):
            return False
    return True


def _check_same_settings(path: Path, existing: list[dict], current: dict) -> None:
    for record in existing[:1]:
        for name, value in current.items():
            if record.get(name) != value:
                raise GenerateError(
                    f"{path} holds samples made with {name}={record.get(name)!r}, not {value!r}: "
                    "use another --out, or the same settings to resume"
                )


def _write_atomic(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(path, records)
