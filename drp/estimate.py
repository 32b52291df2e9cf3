"""`drp run --estimate`: what pruning a whole dataset will take, from a small sample, before spending it.

A seeded sample of the input's usable records (`--estimate-sample N`, `--seed S`: the same seed draws the same
sample) goes through the same policy and teacher in a fresh temporary run, online (a batch round can take a day),
and its per-trace figures project the whole dataset: teacher tokens and cost with a 95% interval on the per-trace
mean (Student's t over the sample, narrowed by the share of the dataset it covers), and time from the sample's
seconds per trace at the run's concurrency (batch mode: how many rounds of jobs it takes). Nothing of the sample
run is kept.

Failed sample traces project nothing: their teacher tokens are unknown (a failed call may have been paid for),
so the figures come from the other traces, with a loud warning; a sample that failed whole is an error.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

from drp.endpoint import short
from drp.errors import UserError

DEFAULT_SAMPLE = 20
SCRATCH_PREFIX = "drp-estimate-"  # in the temporary folder (drp.scratch)


@dataclass
class Projection:
    mean: float | None  # per trace, over the sample
    low: float | None  # 95% interval of the mean
    high: float | None
    total: float | None  # for the whole dataset
    total_low: float | None
    total_high: float | None
    known: int  # sample traces the figure is known for


@dataclass
class Estimate:
    records: int  # usable records in the whole input
    unusable: int  # records that would end as `failed` at once (no teacher call)
    sample_ids: list[str]
    seed: int
    statuses: dict[str, int]
    input_tokens: Projection
    output_tokens: Projection
    cost: Projection | None
    price: str | None
    seconds: Projection  # wall seconds per trace; totals are for the whole run at the run's concurrency
    concurrency: int
    batch: bool
    rounds: int  # teacher stages a trace went through at most (batch mode: jobs in sequence, each up to 24 h)
    sample_seconds: float
    failed: int = 0  # sample traces that failed: left out of every projection
    failure: str | None = None  # the first one's reason
    reused_calls: int = 0  # sample calls answered from the --reuse runs' stored replies
    new_calls: int = 0  # sample calls sent to the teacher
    reused_input_tokens: Projection | None = None  # what reuse saves (None: no --reuse)
    reused_output_tokens: Projection | None = None
    saved_cost: Projection | None = None


def project(values: list[float], records: int, scale: float = 1.0) -> Projection:
    """The per-trace mean with a 95% t-interval, and the whole dataset's total (times `scale`). The sample is
    drawn without replacement from the `records`, so the interval narrows as it covers more of them (finite
    population correction): a sample of every record has no uncertainty left."""
    from scipy import stats

    known = len(values)
    if not known:
        return Projection(None, None, None, None, None, None, 0)
    mean = sum(values) / known
    if known > 1:
        finite_population = math.sqrt(max(records - known, 0) / (records - 1)) if records > 1 else 0.0
        spread = math.sqrt(sum((v - mean) ** 2 for v in values) / (known - 1)) / math.sqrt(known) * finite_population
        half = stats.t.ppf(0.975, known - 1) * spread
    else:
        half = float("nan")  # one trace says nothing about the spread
    low, high = max(0.0, mean - half), mean + half
    return Projection(mean, low, high, mean * records * scale, low * records * scale, high * records * scale, known)


def estimate(config, sample_size: int = DEFAULT_SAMPLE, seed: int = 0, progress: bool = False) -> Estimate:
    """Project pruning the whole input of `config` (a drp.run_config.RunConfig) from a sample of it."""
    from drp import input_traces
    from drp.costs import resolve_price
    from drp.run_place import RunPlace
    from drp.runner import TeacherUnreachable, run
    from drp.scratch import scratch_folder
    from drp.store import open_run

    source_config, teacher = config.source, config.teacher
    loaded = list(input_traces.load(source_config.path, source_config.field_map, source_config.split))
    usable = [item for item in loaded if item.record is not None]
    sample = random.Random(seed).sample(usable, min(sample_size, len(usable)))
    price = resolve_price(teacher.price, teacher.model, teacher.prices_file)
    batch = teacher.mode == "batch"
    # The sample's run lives in a scratch folder: removed at the end, or by the next estimate after a kill.
    with scratch_folder(SCRATCH_PREFIX) as scratch:
        source = Path(scratch) / "sample.jsonl"
        source.write_text("".join(json.dumps(_as_record(item.record), ensure_ascii=False) + "\n" for item in sample))
        sampled = config.with_options(
            source=str(source),
            teacher_mode="online",
            limit=None,
            resume=False,
            overwrite=False,
            field_map={},
            workers=1,
        )
        try:
            summary = run(sampled, RunPlace.under(Path(scratch) / "runs", "estimate"), progress=progress)
        except TeacherUnreachable as exc:
            raise TeacherUnreachable(f"the --estimate sample stopped: {exc.reason}; nothing to project from") from None
        store = open_run(summary.path)
        rows = store.traces(
            (
                "id",
                "status",
                "reason",
                "teacher_input_tokens",
                "teacher_output_tokens",
                "seconds",
                "teacher_calls",
                "reused_calls",
                "reused_input_tokens",
                "reused_output_tokens",
            )
        )
        rounds = _rounds(store, [row["id"] for row in rows])
        store.close()
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    failed = [row for row in rows if row["status"] == "failed"]
    if rows and len(failed) == len(rows):
        raise UserError(
            f"the estimate's sample failed: all {len(rows)} traces failed (first: "
            f"{short(failed[0]['reason'] or '?', 200)}); nothing to project from"
        )
    done = [row for row in rows if row["status"] != "failed"]
    known = [
        row for row in done if row["teacher_input_tokens"] is not None and row["teacher_output_tokens"] is not None
    ]
    count = len(usable)
    costs = (
        [price.cost(row["teacher_input_tokens"], row["teacher_output_tokens"], batch) for row in known] if price else []
    )
    concurrency = max(1, config.execution.concurrency)
    reused = [row for row in rows if row["reused_input_tokens"] is not None and row["reused_output_tokens"] is not None]
    savings = {}
    if teacher.reuse:
        savings = {
            "reused_input_tokens": project([row["reused_input_tokens"] for row in reused], count),
            "reused_output_tokens": project([row["reused_output_tokens"] for row in reused], count),
            "saved_cost": project(
                [price.cost(row["reused_input_tokens"], row["reused_output_tokens"], batch) for row in reused], count
            )
            if price
            else None,
        }
    return Estimate(
        records=count,
        unusable=len(loaded) - count,
        sample_ids=[item.id for item in sample],
        seed=seed,
        statuses=statuses,
        input_tokens=project([row["teacher_input_tokens"] for row in known], count),
        output_tokens=project([row["teacher_output_tokens"] for row in known], count),
        cost=project(costs, count) if price else None,
        price=price.describe(batch) if price else None,
        seconds=project([row["seconds"] for row in done if row["seconds"] is not None], count, 1 / concurrency),
        concurrency=concurrency,
        batch=batch,
        rounds=rounds,
        sample_seconds=summary.seconds,
        failed=len(failed),
        failure=failed[0]["reason"] if failed else None,
        reused_calls=sum(row["reused_calls"] or 0 for row in rows),
        new_calls=sum(row["teacher_calls"] or 0 for row in rows),
        **savings,
    )


def _as_record(record: dict) -> dict:
    return {
        **(record.get("extra") or {}),
        "id": record["id"],
        "question": record["question"],
        "response": record["response"],
        "gold_answer": record["gold_answer"],
    }


def _rounds(store, trace_ids: list[str]) -> int:
    """The most teacher stages (node, attempt) one trace went through: batch jobs follow one another."""
    deepest = 0
    for trace_id in trace_ids:
        stages = {(call["node"], call["attempt"]) for call in store.calls(trace_id) if call["llm"]}
        deepest = max(deepest, len(stages))
    return deepest


def describe(result: Estimate) -> str:
    from drp.costs import format_cost

    def tokens(p: Projection) -> str:
        if p.total is None:
            return "unknown (no usage reported)"
        interval = "" if math.isnan(p.total_high) else f" (95% CI {p.total_low:,.0f}–{p.total_high:,.0f})"
        return f"{p.total:,.0f}{interval}, {p.mean:,.0f} per trace"

    lines = [
        f"estimate for {result.records} traces from a sample of {len(result.sample_ids)} (seed {result.seed}; "
        f"the sample took {result.sample_seconds:.1f}s online)",
        "  sample: " + ", ".join(f"{status} {n}" for status, n in sorted(result.statuses.items())),
        f"  teacher input tokens  {tokens(result.input_tokens)}",
        f"  teacher output tokens {tokens(result.output_tokens)}",
    ]
    if result.cost is None:
        lines.append("  cost: unknown (no price: --teacher-price IN,OUT or NAME)")
    elif result.cost.total is None:
        lines.append(f"  cost: unknown (no usage reported) at {result.price}")
    else:
        interval = (
            ""
            if math.isnan(result.cost.total_high)
            else (f" (95% CI {format_cost(result.cost.total_low)}–{format_cost(result.cost.total_high)})")
        )
        lines.append(
            f"  cost {format_cost(result.cost.total)}{interval}, {format_cost(result.cost.mean)} per trace, "
            f"at {result.price}"
        )
    if result.reused_input_tokens is not None:
        asked = result.reused_calls + result.new_calls
        share = f"{result.reused_calls / asked:.0%}" if asked else "none"
        saved = ""
        if result.saved_cost is not None and result.saved_cost.total is not None:
            saved = f", {format_cost(result.saved_cost.total)} not spent"
        lines.append(
            f"  reuse: {result.reused_calls} of the sample's {asked} teacher calls ({share}) answered from "
            f"stored replies; saves {tokens(result.reused_input_tokens)} input and "
            f"{tokens(result.reused_output_tokens)} output tokens{saved} (the figures above are what is spent)"
        )
    seconds = result.seconds
    if result.batch:
        lines.append(f"  time: batch mode, {result.rounds} rounds of jobs one after another, each up to 24 h")
    elif seconds.total is not None:
        interval = (
            ""
            if math.isnan(seconds.total_high)
            else (f" (95% CI {_duration(seconds.total_low)}–{_duration(seconds.total_high)})")
        )
        lines.append(
            f"  time {_duration(seconds.total)}{interval} at concurrency {result.concurrency} "
            f"({seconds.mean:.1f}s per trace, if the endpoint keeps up)"
        )
    if result.failed:
        lines.insert(
            1,
            f"WARNING: {result.failed} of {len(result.sample_ids)} sample traces failed (first: "
            f"{short(result.failure or '?', 200)}): their teacher tokens are unknown and every figure "
            "below leaves them out, so it may be low",
        )
    if result.unusable:
        lines.append(f"  {result.unusable} unusable input records end as failed without a teacher call")
    lines.append("nothing else was sent: run again without --estimate to prune the whole dataset")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
