"""Mixing runs into one dataset and writing it: train.jsonl, a `datasets` folder, README.md, drp_export.json."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from drp.contamination import SIDECAR, fingerprints, write_sidecar
from drp.errors import UserError
from drp.export.card import manifest, render_card
from drp.export.examples import AnswerStyle, build_example
from drp.export.hygiene import Exclusion, benchmark_fingerprints, exclude, split_validation
from drp.export.sources import AcceptedRun, SourceError, load_accepted_run
from drp.layout import DEFAULT_INSTRUCTION

Duplicates = Literal["error", "first", "all"]
MANIFEST = "drp_export.json"


class ExportError(UserError):
    """Bad input for an export; the message says what is wrong and how to proceed."""


@dataclass
class ExportSummary:
    out: Path
    examples: int
    per_run: dict[str, int]
    dropped_duplicates: dict[str, int]
    info: dict
    excluded: Exclusion
    validation: int = 0


def export_dataset(
    runs: list[str],
    out: Path | str,
    instruction: str | None = DEFAULT_INSTRUCTION,
    system_prompt: str | None = None,
    answer: AnswerStyle = "full",
    duplicates: Duplicates = "error",
    overwrite: bool = False,
    exclude_benchmarks: list[str] | None = None,
    data_dir: Path | None = None,
    val_fraction: float = 0.0,
) -> ExportSummary:
    """Write the accepted traces of `runs` (ids, folders or pruned.jsonl files) as one SFT dataset in `out`.

    Examples whose question is in one of `exclude_benchmarks` (names or files, as `drp eval` takes them) are
    left out; `val_fraction` of the rest (by question) becomes the `validation` split."""
    if not runs:
        raise ExportError("no run given: name at least one run id, run folder or pruned.jsonl")
    out = Path(out)
    _check_target(out, overwrite)
    if not 0 <= val_fraction < 1:
        raise ExportError(f"--val-fraction must be at least 0 and below 1, not {val_fraction}")
    benchmarks = _benchmarks(exclude_benchmarks or [], data_dir)
    try:
        sources = [load_accepted_run(spec) for spec in runs]
    except SourceError as error:
        raise ExportError(str(error)) from None
    names = Counter(source.name for source in sources)
    if repeated := [name for name, count in names.items() if count > 1]:
        raise ExportError(f"run {repeated[0]!r} is given more than once")

    records, dropped = _mix(sources, instruction, system_prompt, answer, duplicates)
    records, excluded = exclude(records, benchmarks)
    if not records:
        raise ExportError(
            f"nothing left to export: all {excluded.dropped} examples have questions from {', '.join(benchmarks)}"
        )
    train, validation = split_validation(records, val_fraction)
    per_run = Counter(record["run"] for record in records)
    options = {
        "answer": answer,
        "instruction": instruction,
        "system_prompt": system_prompt,
        "duplicates": duplicates,
        "exclude_benchmarks": exclude_benchmarks or [],
        "val_fraction": val_fraction,
    }
    questions = fingerprints(r["question"] for r in train)
    info = manifest(sources, records, per_run, options)
    info["splits"] = {"train": len(train), **({"validation": len(validation)} if validation else {})}
    info["excluded"] = {
        "examples": excluded.dropped,
        "per_benchmark": excluded.per_benchmark,
        "benchmark_questions": excluded.benchmark_sizes,
    }
    info["train_questions"] = {"file": SIDECAR, "count": len(questions)}
    _write(out, {"train": train, "validation": validation}, info, questions)
    return ExportSummary(
        out=out,
        examples=len(records),
        per_run=dict(per_run),
        dropped_duplicates=dropped,
        info=info,
        excluded=excluded,
        validation=len(validation),
    )


def _benchmarks(names: list[str], data_dir: Path | None) -> dict[str, set[str]]:
    from drp.evals.problem_sets import BenchmarkError

    try:
        return benchmark_fingerprints(names, data_dir)
    except BenchmarkError as error:
        raise ExportError(f"--exclude-benchmarks: {error}") from None


def _mix(sources: list[AcceptedRun], instruction, system_prompt, answer, duplicates):
    owners: dict[str, list[str]] = {}
    for source in sources:
        for trace in source.traces:
            owners.setdefault(trace.trace_id, []).append(source.name)
    shared = {trace_id: where for trace_id, where in owners.items() if len(where) > 1}
    if shared and duplicates == "error":
        sample = ", ".join(f"{trace_id} ({' & '.join(where)})" for trace_id, where in list(shared.items())[:5])
        raise ExportError(
            f"{len(shared)} trace ids appear in more than one run, e.g. {sample}. Choose how to mix them: "
            "--duplicates first (keep the first run's version) or --duplicates all (keep every version, "
            "ids become RUN/ID)"
        )
    records, seen, dropped = [], set(), Counter()
    prefix_ids = duplicates == "all" and len(sources) > 1
    for source in sources:
        for trace in source.traces:
            if duplicates == "first" and trace.trace_id in seen:
                dropped[source.name] += 1
                continue
            seen.add(trace.trace_id)
            example_id = f"{source.name}/{trace.trace_id}" if prefix_ids else trace.trace_id
            records.append(build_example(trace, source.name, example_id, instruction, system_prompt, answer))
    return records, dict(dropped)


def _check_target(out: Path, overwrite: bool) -> None:
    from drp.outputs import check_output

    check_output(out, "export")
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not overwrite:
        raise ExportError(f"{out} already exists and is not empty; pass --overwrite to replace an earlier export")
    if not (out / MANIFEST).exists():
        raise ExportError(f"refusing to overwrite {out}: it is not a drp export (no {MANIFEST})")


def _write(out: Path, splits: dict[str, list[dict]], info: dict, questions: list[str]) -> None:
    from datasets import Dataset, DatasetDict
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar

    # Built beside the target under a fresh name (never a folder someone else made), then swapped in whole:
    # an interrupted export leaves the target as it was.
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        mask = os.umask(0)
        os.umask(mask)
        partial.chmod(0o777 & ~mask)  # mkdtemp's folder is private; the dataset gets the usual permissions
        disable_progress_bar()  # a few hundred rows: the bars would only clutter the command's summary
        try:
            DatasetDict(
                {name: Dataset.from_list(rows, features=_features()) for name, rows in splits.items() if rows}
            ).save_to_disk(str(partial))
        finally:
            enable_progress_bar()
        for name, rows in splits.items():
            if rows:
                with open(partial / f"{name}.jsonl", "w", encoding="utf-8") as handle:
                    for record in rows:
                        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        write_sidecar(partial, questions)
        (partial / "README.md").write_text(render_card(info, questions), encoding="utf-8")
        (partial / MANIFEST).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        old = None
        if out.exists():  # an earlier export (checked) or an empty folder: it steps aside, then goes
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old)
        os.replace(partial, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _features():
    from datasets import Features, List, Value

    message = {"role": Value("string"), "content": Value("string")}
    columns = {
        "id": Value("string"),
        "run": Value("string"),
        "trace_id": Value("string"),
        "prompt": List(message),
        "completion": List(message),
        "question": Value("string"),
        "thinking": Value("string"),
        "answer_section": Value("string"),
        "answer": Value("string"),
        "gold_answer": Value("string"),
        "answer_style": Value("string"),
    }
    for part in ("thinking", "response"):
        for when in ("before", "after"):
            columns[f"{part}_tokens_{when}"] = Value("int64")
    return Features(columns)
