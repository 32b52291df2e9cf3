"""`drp eval`: sample a student on benchmarks over seeds, grade, and write samples + metrics to a folder.

    DIR/config.json        settings (resuming with different decoding settings is refused)
    DIR/samples.jsonl      every sample, appended and flushed one by one (the resume point)
    DIR/metrics/<b>.json   per benchmark; DIR/metrics.json all of them
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from drp.errors import UserError
from drp.evals.problem_sets import Fields, load_benchmark
from drp.evals.metrics import benchmark_metrics
from drp.evals.problems import Benchmark
from drp.evals.sampling import SampleWriter, SamplingSettings, Task, latest_by_key, read_records, run_tasks
from drp.evals.scoring import grade
from drp.evals.templates import fill_template, resolve_template

SAMPLES = "samples.jsonl"
CONFIG = "config.json"


class EvalError(UserError):
    """Bad settings or input: reported to the user as is."""


@dataclass(kw_only=True)
class EvalSettings(SamplingSettings):
    benchmarks: list[str]
    seeds: int = 3


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
    from drp.redaction import redact_url
    from drp.tokens import TokenCounter

    started = time.perf_counter()
    if settings.out.exists() and not settings.out.is_dir():
        raise EvalError(f"--out {settings.out} is a file: eval writes a folder (samples, metrics); name a folder")
    label, template = resolve_template(settings.prompt_template)
    benchmarks = [load_benchmark(name, settings.data_dir, settings.source, settings.limit, Fields())
                  for name in settings.benchmarks]
    _no_duplicates(benchmarks)
    tokenizer_name = tokenizer_for(settings.endpoint.model, settings.tokenizer)
    config = {
        "model": settings.endpoint.model,
        "model_url": redact_url(settings.endpoint.url),  # credentials in the URL are never written
        "prompt_template": {"label": label, "template": template},
        "tokenizer": tokenizer_name,
        "decoding": settings.decoding.public(),
        "seeds": list(range(settings.seeds)),
        "limit": settings.limit,
        "benchmarks": {b.name: {"source": b.source, "n_problems": len(b.problems)} for b in benchmarks},
    }
    out = settings.out
    if not settings.overwrite:
        _check_resumable(out, config)

    endpoint = settings.open_endpoint(echo)
    config["server_kind"] = endpoint.kind
    if settings.overwrite:
        _remove_outputs(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_config(out, config)

    samples_path = out / SAMPLES
    latest = latest_by_key(read_records(samples_path), _key)
    finished = {k for k, r in latest.items() if not r.get("error")}
    tasks = [
        Task((b.name, seed, p.id), [{"role": "user", "content": fill_template(template, p.question)}], seed, p)
        for seed in range(settings.seeds) for b in benchmarks for p in b.problems
        if (b.name, seed, p.id) not in finished
    ]
    echo(f"{len(tasks)} samples to draw ({len(finished)} already done) from {settings.endpoint.model} at "
         f"{redact_url(settings.endpoint.url)}; tokens counted with {tokenizer_name}")
    counter = TokenCounter(tokenizer_name)
    progress = _progress(len(tasks), settings.progress)
    tally = {"correct": 0, "errors": 0}

    with SampleWriter(samples_path) as writer:
        def on_result(task: Task, completion) -> None:
            problem = task.payload
            record = {
                "benchmark": problem.benchmark, "problem_id": problem.id, "seed": task.seed,
                "question_sha": problem.question_sha, "prompt": task.messages[-1]["content"],
                "gold_answer": problem.gold, "model": settings.endpoint.model,
            }
            if completion.error:
                tally["errors"] += 1
                record.update(error=completion.error, latency_s=round(completion.latency_s, 3))
            else:
                verdict = grade(completion.text, problem.gold)
                tally["correct"] += verdict.correct
                record.update(
                    response=completion.text, finish_reason=completion.finish_reason,
                    extracted_answer=verdict.extracted, answer_source=verdict.source, correct=verdict.correct,
                    tokens=counter.count(completion.text), server_completion_tokens=completion.completion_tokens,
                    prompt_tokens=completion.prompt_tokens, latency_s=round(completion.latency_s, 3), error=None,
                )
            writer.write(record)
            progress.update(1)
            progress.set_postfix(correct=tally["correct"], errors=tally["errors"], refresh=False)

        outcome = run_tasks(tasks, endpoint, settings.decoding, settings.concurrency, on_result,
                            settings.max_consecutive_errors)
    progress.close()
    metrics = write_metrics(out, settings.decoding.max_tokens)
    return EvalOutcome(out, metrics, len(tasks), outcome.done, outcome.failed, outcome.aborted,
                       outcome.interrupted, time.perf_counter() - started)


def _key(record: dict) -> tuple:
    return (record.get("benchmark"), record.get("seed"), str(record.get("problem_id")))


def load_samples(out: Path) -> dict[str, list[dict]]:
    """Benchmark → its latest sample records (one per seed and problem)."""
    grouped: dict[str, list[dict]] = {}
    for record in latest_by_key(read_records(out / SAMPLES), _key).values():
        grouped.setdefault(record["benchmark"], []).append(record)
    return grouped


def write_metrics(out: Path, max_tokens: int | None) -> dict:
    every = {name: {"benchmark": name, **benchmark_metrics(records, max_tokens)}
             for name, records in sorted(load_samples(out).items())}
    (out / "metrics").mkdir(exist_ok=True)
    for name, metrics in every.items():
        (out / "metrics" / f"{name.replace(':', '-').replace('/', '-')}.json").write_text(
            json.dumps(metrics, indent=2) + "\n")
    (out / "metrics.json").write_text(json.dumps(every, indent=2) + "\n")
    return every


# Settings that change what a sample means: a resumed run must not mix two of them.
_MUST_MATCH = ("model", "prompt_template", "tokenizer", "decoding")


def _check_resumable(out: Path, config: dict) -> None:
    path = out / CONFIG
    if not path.exists():
        if out.exists() and any(out.iterdir()):
            if not (out / SAMPLES).exists():
                raise EvalError(f"{out} exists and is not an eval folder; choose another --out")
        return
    previous = json.loads(path.read_text())
    for name in _MUST_MATCH:
        if previous.get(name) != config.get(name):
            raise EvalError(f"{out} holds samples made with a different {name} "
                            f"({json.dumps(previous.get(name))} vs {json.dumps(config.get(name))}); "
                            "use another --out, or the same settings to resume")


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
        config = {**config, "benchmarks": {**previous.get("benchmarks", {}), **config["benchmarks"]},
                  "seeds": sorted(set(previous.get("seeds", [])) | set(config["seeds"]))}
    path.write_text(json.dumps(config, indent=2) + "\n")


def _no_duplicates(benchmarks: list[Benchmark]) -> None:
    names = [b.name for b in benchmarks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise EvalError(f"benchmark given twice: {', '.join(repeated)}")


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="eval", unit="sample", disable=not enabled or total == 0, dynamic_ncols=True)
