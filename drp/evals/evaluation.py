"""`drp eval`: sample a student on benchmarks over seeds, grade, and write samples + metrics to a folder.

One sampling job (drp.sampling.job); the protocol named by --protocol (drp.evals.protocols) makes the requests
and adds its scores.

DIR/config.json        settings (resuming with different decoding settings is refused)
DIR/samples.jsonl      every sample, appended and flushed one by one (the resume point)
DIR/metrics/<b>.json   per benchmark; DIR/metrics.json all of them
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from drp.contamination import TrainQuestionsError, find_train_questions, fingerprint, load_train_questions
from drp.errors import UserError
from drp.evals.metrics import benchmark_metrics
from drp.evals.problem_sets import Fields, load_benchmark
from drp.evals.problems import Benchmark
from drp.evals.protocols import DEFAULT_PROTOCOL, Plan, Protocol, protocol_named, recorded_protocol
from drp.evals.protocols.paper import DEFAULT_SCORE
from drp.evals.scoring import grade
from drp.evals.token_split import split_tokens
from drp.sampling.job import SamplingJob, SamplingSettings, tokenizer_for
from drp.sampling.pool import Task
from drp.sampling.samples_file import latest_by_key, read_records

SAMPLES = "samples.jsonl"
CONFIG = "config.json"


class EvalError(UserError):
    """Bad settings or input: reported to the user as is."""


@dataclass(kw_only=True)
class EvalSettings(SamplingSettings):
    benchmarks: list[str]
    seeds: int = 3
    protocol: str = DEFAULT_PROTOCOL  # a name in drp.evals.protocols.PROTOCOLS
    # `paper` only: one cap for every benchmark instead of the paper's per-benchmark caps
    paper_max_tokens: int | None = None
    score: str = DEFAULT_SCORE  # `paper` only: the headline score (strict, flexible or math-verify), see protocols
    train_questions: Path | None = None  # default: the list `drp distill` saved with the model, when found


@dataclass
class EvalOutcome:
    out: Path
    metrics: dict
    todo: int
    done: int
    failed: int
    aborted: str | None
    interrupted: bool
    wall_s: float


def run_eval(settings: EvalSettings, echo: Callable[[str], None] = print) -> EvalOutcome:
    from drp.outputs import check_output
    from drp.redaction import redact_url
    from drp.tokens import TokenCounter

    started = time.perf_counter()
    if settings.out.exists() and not settings.out.is_dir():
        raise EvalError(f"--out {settings.out} is a file: eval writes a folder (samples, metrics); name a folder")
    check_output(settings.out, "eval")
    protocol = protocol_named(settings.protocol)
    label, template = protocol.template(settings.prompt_template)
    benchmarks = [
        load_benchmark(name, settings.data_dir, settings.source, settings.limit, Fields())
        for name in settings.benchmarks
    ]
    _no_duplicates(benchmarks)
    tokenizer_name = tokenizer_for(settings.endpoint.model, settings.tokenizer)
    trained, trained_source = _train_questions(settings)
    config = {
        "model": settings.endpoint.model,
        "model_url": redact_url(settings.endpoint.url),  # credentials in the URL are never written
        "protocol": protocol.name,
        **protocol.settings_record(settings),
        "train_questions": trained_source,
        "prompt_template": {"label": label, "template": template},
        "tokenizer": tokenizer_name,
        "decoding": protocol.decoding_record(settings),
        "seeds": list(range(settings.seeds)),
        "limit": settings.limit,
        "benchmarks": {b.name: {"source": b.source, "n_problems": len(b.problems)} for b in benchmarks},
    }
    out = settings.out
    if not settings.overwrite:
        _check_resumable(out, config)

    endpoint = settings.open_endpoint(echo)
    config["server_kind"] = endpoint.kind
    counter = TokenCounter(tokenizer_name)
    plan = protocol.plan(benchmarks, template, settings, endpoint, counter, echo)
    config.update(plan.record or {})
    _warn_contamination(benchmarks, trained, trained_source, echo)
    if settings.seeds > 1 and settings.decoding.temperature == 0:
        echo(
            f"note: {settings.seeds} samples per problem at temperature 0 are (near) copies of one another: "
            "pass@k and maj@k then say no more than avg@k"
        )
    if settings.overwrite:
        _remove_outputs(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_config(out, config)

    job = SamplingJob("eval", out / SAMPLES, sample_key, _recorder(settings, protocol, config, trained, counter), True)
    about = (
        f"from {settings.endpoint.model} at {redact_url(settings.endpoint.url)}; protocol {protocol.name}; "
        f"tokens counted with {tokenizer_name}"
    )
    outcome = job.run(_planned(benchmarks, settings.seeds, plan), job.finished(), endpoint, settings, echo, about)
    metrics = write_metrics(out, plan.caps or settings.decoding.max_tokens)
    return EvalOutcome(
        out,
        metrics,
        outcome.todo,
        outcome.done,
        outcome.failed,
        outcome.aborted,
        outcome.interrupted,
        time.perf_counter() - started,
    )


def _planned(benchmarks: list[Benchmark], seeds: int, plan: Plan) -> Iterator[Task]:
    """Every sample of the eval, seed by seed (a run cut short has whole seeds first), as the plan asks it."""
    for seed in range(seeds):
        for benchmark in benchmarks:
            for problem in benchmark.problems:
                request = plan.requests[benchmark.name][problem.id]
                yield Task(
                    (benchmark.name, seed, problem.id),
                    list(request.messages),
                    seed,
                    problem,
                    prompt=request.prompt,
                    stop=request.stop,
                    max_tokens=request.max_tokens,
                )


def _recorder(settings: EvalSettings, protocol: Protocol, config: dict, trained: set[str] | None, counter) -> Callable:
    """A completion → its sample record: graded by math-verify, then by the protocol's own scores."""

    def record(task: Task, completion) -> dict:
        problem = task.payload
        record = {
            "benchmark": problem.benchmark,
            "problem_id": problem.id,
            "seed": task.seed,
            "question_sha": problem.question_sha,
            "prompt": task.prompt if task.prompt is not None else task.messages[-1]["content"],
            "gold_answer": problem.gold,
            "model": settings.endpoint.model,
            "protocol": protocol.name,
            "trained_on": None if trained is None else fingerprint(problem.question) in trained,
        }
        if completion.error:
            record.update(error=completion.error, latency_s=round(completion.latency_s, 3))
            return record
        verdict = grade(completion.text, problem.gold)
        split = split_tokens(completion.text, counter.count)
        record.update(
            response=completion.text,
            finish_reason=completion.finish_reason,
            extracted_answer=verdict.extracted,
            answer_source=verdict.source,
            correct=verdict.correct,
            tokens=split.tokens,
            thinking_tokens=split.thinking,
            answer_tokens=split.answer,
            think_closed=split.think_closed,
            server_completion_tokens=completion.completion_tokens,
            prompt_tokens=completion.prompt_tokens,
            latency_s=round(completion.latency_s, 3),
            error=None,
        )
        record.update(protocol.scores(completion.text, problem, verdict, config))
        return record

    return record


def sample_key(record: dict) -> tuple:
    """A sample's place: benchmark, seed, problem (a later record of the same place replaces an earlier one)."""
    return (record.get("benchmark"), record.get("seed"), str(record.get("problem_id")))


def load_samples(out: Path) -> dict[str, list[dict]]:
    """Benchmark → its latest sample records (one per seed and problem). Under the paper protocol `correct` is
    the folder's headline score (config.json's `score`), so a rerun with another --score rescores without
    sampling again, and the table, metrics and `drp compare` all read that one score."""
    config = json.loads((out / CONFIG).read_text()) if (out / CONFIG).is_file() else {}
    grouped: dict[str, list[dict]] = {}
    for record in latest_by_key(read_records(out / SAMPLES), sample_key).values():
        grouped.setdefault(record["benchmark"], []).append(with_headline(record, config))
    return grouped


def with_headline(record: dict, config: dict) -> dict:
    """The sample with `correct` set to the folder's headline score (paper protocol; else as sampled)."""
    return recorded_protocol(config).with_headline(record, config)


def write_metrics(out: Path, max_tokens: int | dict[str, int] | None) -> dict:
    """metrics.json and metrics/<b>.json from the samples; `max_tokens` is one cap or a cap per benchmark."""
    config = json.loads((out / CONFIG).read_text()) if (out / CONFIG).is_file() else {}
    protocol = config.get("protocol", DEFAULT_PROTOCOL)
    every = {}
    for name, records in sorted(load_samples(out).items()):
        cap = max_tokens.get(name) if isinstance(max_tokens, dict) else max_tokens
        every[name] = {
            "benchmark": name,
            "protocol": protocol,
            **recorded_protocol(config).metrics_notes(name, config),
            **benchmark_metrics(records, cap),
        }
    (out / "metrics").mkdir(exist_ok=True)
    for name, metrics in every.items():
        (out / "metrics" / f"{name.replace(':', '-').replace('/', '-')}.json").write_text(
            json.dumps(metrics, indent=2) + "\n"
        )
    (out / "metrics.json").write_text(json.dumps(every, indent=2) + "\n")
    return every


def _train_questions(settings: EvalSettings) -> tuple[set[str] | None, str | None]:
    """The student's training-question fingerprints and where they came from; (None, None) when unknown."""
    from drp.models import resolve

    source = settings.train_questions
    if source is None:
        source = find_train_questions(resolve(settings.endpoint.model))
        if source is None:
            return None, None
    try:
        return load_train_questions(Path(source)), str(source)
    except TrainQuestionsError as error:
        raise EvalError(f"--train-questions: {error}") from None


def _warn_contamination(
    benchmarks: list[Benchmark], trained: set[str] | None, source: str | None, echo: Callable[[str], None]
) -> None:
    if trained is None:
        echo(
            "training questions unknown (no train_questions.txt with the model, no --train-questions): "
            "contamination not checked"
        )
        return
    for benchmark in benchmarks:
        seen = [p.id for p in benchmark.problems if fingerprint(p.question) in trained]
        if seen:
            echo(
                f"WARNING: {benchmark.name}: {len(seen)} of {len(benchmark.problems)} evaluated problems are "
                f"questions the student trained on (from {source}), e.g. {', '.join(map(str, seen[:5]))}: "
                "its score there is not a held-out score"
            )


# Settings that change what a sample means: a resumed run must not mix two of them.
_MUST_MATCH = ("model", "protocol", "prompt_template", "tokenizer", "decoding")


def _check_resumable(out: Path, config: dict) -> None:
    path = out / CONFIG
    if not path.exists():
        if out.exists() and any(out.iterdir()):
            if not (out / SAMPLES).exists():
                raise EvalError(f"{out} exists and is not an eval folder; choose another --out")
        return
    previous = {"protocol": DEFAULT_PROTOCOL, **json.loads(path.read_text())}  # older folders: the default
    for name in _MUST_MATCH:
        if previous.get(name) != config.get(name):
            raise EvalError(
                f"{out} holds samples made with a different {name} "
                f"({json.dumps(previous.get(name))} vs {json.dumps(config.get(name))}); "
                "use another --out, or the same settings to resume"
            )


def _remove_outputs(out: Path) -> None:
    """Only the files eval writes: --out may be a folder that holds other things too."""
    import shutil

    for name in (SAMPLES, CONFIG, "metrics.json"):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "metrics", ignore_errors=True)


def _write_config(out: Path, config: dict) -> None:
    path = out / CONFIG
    if path.exists():  # extending a run (more seeds or benchmarks): keep the union on record
        previous = json.loads(path.read_text())
        config = {
            **config,
            "benchmarks": {**previous.get("benchmarks", {}), **config["benchmarks"]},
            "seeds": sorted(set(previous.get("seeds", [])) | set(config["seeds"])),
        }
    path.write_text(json.dumps(config, indent=2) + "\n")


def _no_duplicates(benchmarks: list[Benchmark]) -> None:
    names = [b.name for b in benchmarks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise EvalError(f"benchmark given twice: {', '.join(repeated)}")
