"""`drp eval`: sample a student on benchmarks over seeds, grade, and write samples + metrics to a folder.

DIR/config.json        settings (resuming with different decoding settings is refused)
DIR/samples.jsonl      every sample, appended and flushed one by one (the resume point)
DIR/metrics/<b>.json   per benchmark; DIR/metrics.json all of them
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from drp.contamination import TrainQuestionsError, find_train_questions, fingerprint, load_train_questions
from drp.errors import UserError
from drp.evals.metrics import benchmark_metrics
from drp.evals.paper_protocol import paper_requests
from drp.evals.problem_sets import Fields, load_benchmark
from drp.evals.problems import Benchmark
from drp.evals.protocols import (
    ASSUMED_PROMPT_NOTE,
    DEFAULT_PROTOCOL,
    DEFAULT_SCORE,
    check_score,
    headline_correct,
    is_gsm8k,
    lm_eval_scores,
)
from drp.evals.protocols import check as check_protocol
from drp.evals.sampling import SampleWriter, SamplingSettings, Task, latest_by_key, read_records, run_tasks
from drp.evals.scoring import grade
from drp.evals.templates import fill_template, resolve_template
from drp.evals.token_split import split_tokens

SAMPLES = "samples.jsonl"
CONFIG = "config.json"


class EvalError(UserError):
    """Bad settings or input: reported to the user as is."""


@dataclass(kw_only=True)
class EvalSettings(SamplingSettings):
    benchmarks: list[str]
    seeds: int = 3
    protocol: str = "default"  # drp.evals.protocols.PROTOCOLS
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


def tokenizer_for(model: str, explicit: str | None) -> str:
    """The student's own tokenizer: --tokenizer, else the model folder when it has one, else the default."""
    from drp.models import resolve
    from drp.paths import default_tokenizer

    if explicit:
        return resolve(explicit)
    folder = Path(resolve(model))
    if folder.is_dir() and any((folder / f).exists() for f in ("tokenizer.json", "tokenizer_config.json")):
        return str(folder)
    return default_tokenizer()


def run_eval(settings: EvalSettings, echo: Callable[[str], None] = print) -> EvalOutcome:
    from drp.outputs import check_output
    from drp.redaction import redact_url
    from drp.tokens import TokenCounter

    started = time.perf_counter()
    if settings.out.exists() and not settings.out.is_dir():
        raise EvalError(f"--out {settings.out} is a file: eval writes a folder (samples, metrics); name a folder")
    check_output(settings.out, "eval")
    protocol = check_protocol(settings.protocol)
    label, template = resolve_template(settings.prompt_template)
    if protocol == "paper":  # the paper's prompts replace the student family's template
        label, template = "paper", None
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
        "protocol": protocol,
        **({"score": check_score(settings.score)} if protocol == "paper" else {}),
        "train_questions": trained_source,
        "prompt_template": {"label": label, "template": template},
        "tokenizer": tokenizer_name,
        "decoding": _decoding_record(settings, protocol),
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
    requests = {}
    if protocol == "paper":
        endpoint.probe_completions()
        requests = paper_requests(
            benchmarks, settings.paper_max_tokens, endpoint.context_length(), counter.count, echo, eos=counter.eos_token
        )
        config["paper_caps"] = {name: max(cap for _, cap in per.values()) for name, per in requests.items()}
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

    samples_path = out / SAMPLES
    latest = latest_by_key(read_records(samples_path), sample_key)
    finished = {k for k, r in latest.items() if not r.get("error")}

    def task(benchmark: Benchmark, seed: int, problem) -> Task:
        key = (benchmark.name, seed, problem.id)
        if protocol == "paper":
            request, cap = requests[benchmark.name][problem.id]
            return Task(key, [], seed, problem, prompt=request.prompt, stop=request.stop, max_tokens=cap)
        return Task(key, [{"role": "user", "content": fill_template(template, problem.question)}], seed, problem)

    tasks = [
        task(b, seed, p)
        for seed in range(settings.seeds)
        for b in benchmarks
        for p in b.problems
        if (b.name, seed, p.id) not in finished
    ]
    echo(
        f"{len(tasks)} samples to draw ({len(finished)} already done) from {settings.endpoint.model} at "
        f"{redact_url(settings.endpoint.url)}; protocol {protocol}; tokens counted with {tokenizer_name}"
    )
    progress = _progress(len(tasks), settings.progress)
    tally = {"correct": 0, "errors": 0}

    with SampleWriter(samples_path) as writer:

        def on_result(task: Task, completion) -> None:
            problem = task.payload
            record = {
                "benchmark": problem.benchmark,
                "problem_id": problem.id,
                "seed": task.seed,
                "question_sha": problem.question_sha,
                "prompt": task.prompt if task.prompt is not None else task.messages[-1]["content"],
                "gold_answer": problem.gold,
                "model": settings.endpoint.model,
                "protocol": protocol,
                "trained_on": None if trained is None else fingerprint(problem.question) in trained,
            }
            if completion.error:
                tally["errors"] += 1
                record.update(error=completion.error, latency_s=round(completion.latency_s, 3))
            else:
                verdict = grade(completion.text, problem.gold)
                tally["correct"] += verdict.correct
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
                if protocol == "paper":
                    # every score side by side; `correct` is the headline (--score). lm-eval's two filters are
                    # GSM8K's own and are not applied to the other benchmarks.
                    record["math_verify_correct"] = verdict.correct
                    if is_gsm8k(problem.benchmark):
                        scores = lm_eval_scores(completion.text, problem.gold)
                        record.update(
                            strict_answer=scores.strict,
                            strict_correct=scores.strict_correct,
                            flexible_answer=scores.flexible,
                            flexible_correct=scores.flexible_correct,
                        )
                    record["correct"] = headline_correct(record, config["score"])
                    tally["correct"] += record["correct"] - verdict.correct
            writer.write(record)
            progress.update(1)
            progress.set_postfix(correct=tally["correct"], errors=tally["errors"], refresh=False)

        outcome = run_tasks(
            tasks, endpoint, settings.decoding, settings.concurrency, on_result, settings.max_consecutive_errors
        )
    progress.close()
    metrics = write_metrics(out, config.get("paper_caps") or settings.decoding.max_tokens)
    return EvalOutcome(
        out,
        metrics,
        len(tasks),
        outcome.done,
        outcome.failed,
        outcome.aborted,
        outcome.interrupted,
        time.perf_counter() - started,
    )


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
    score = config.get("score") if config.get("protocol") == "paper" else None
    if score and not record.get("error") and "math_verify_correct" in record:
        record["correct"] = headline_correct(record, score)
    return record


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
            **_paper_notes(name, config),
            **benchmark_metrics(records, cap),
        }
    (out / "metrics").mkdir(exist_ok=True)
    for name, metrics in every.items():
        (out / "metrics" / f"{name.replace(':', '-').replace('/', '-')}.json").write_text(
            json.dumps(metrics, indent=2) + "\n"
        )
    (out / "metrics.json").write_text(json.dumps(every, indent=2) + "\n")
    return every


def _paper_notes(benchmark: str, config: dict) -> dict:
    """Under the paper protocol: which score `accuracy` is, and, off GSM8K, that the prompt is an assumption."""
    if config.get("protocol") != "paper":
        return {}
    if is_gsm8k(benchmark):
        return {"score": config.get("score", DEFAULT_SCORE)}
    return {"score": "math-verify", "prompt_note": ASSUMED_PROMPT_NOTE}


def _decoding_record(settings: EvalSettings, protocol: str) -> dict:
    decoding = settings.decoding.public()
    if protocol == "paper" and settings.paper_max_tokens is None:
        decoding["max_tokens"] = None  # the paper's cap per benchmark, in config.json's paper_caps
    return decoding


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


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="eval", unit="sample", disable=not enabled or total == 0, dynamic_ncols=True)
