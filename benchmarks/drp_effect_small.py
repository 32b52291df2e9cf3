"""The DRP effect end to end, at a scale a laptop CPU runs: a student trained on pruned traces answers in fewer
tokens than the same student trained on the same traces unpruned.

    python benchmarks/drp_effect_small.py --out /tmp/drp-effect    # SmolLM2-135M, `rules`, ~45 min on 2 busy cores
    python benchmarks/drp_effect_small.py --out DIR --policy skill-aware \\
        --teacher-url http://127.0.0.1:8000/v1 --teacher-model Qwen/Qwen2.5-32B-Instruct
    python benchmarks/drp_effect_small.py --out DIR --student PATH --recipe r1-distill-qwen-1.5b-lora \\
        --max-length 4096 --steps 300 --eval-problems 200 --max-tokens 8192    # a GPU and a real student

Every stage is the real `drp` command, run as a subprocess (`python -m drp.cli ...`), in this order:

1. `drp run` the shared real traces twice, `--policy identity` (unpruned) and `--policy rules` (or any LLM policy
   with `--teacher-url`), token counts with the student's tokenizer.
2. `drp export` both runs; keep the ids accepted by both whose rendered example fits `--max-length` tokens in both
   variants (a student only learns to stop if it sees where examples end), the same ids for both; `drp export`
   each selection.
3. `drp distill` each with the same recipe, seed, learning rate and number of steps.
4. `drp serve` each student in turn and `drp eval` it greedily, with the same cap, on the same problems, which
   neither student trained on: the shared traces are GSM8K *test* problems, so the default evaluation set is the
   first problems of GSM8K *train*; the script stops if any evaluated question is a training question.
5. `drp compare` (baseline: the identity student), then `result.json` in --out with the headline figures.

The figures are whole-response tokens of the student's own tokenizer, as the paper counts them. A 135M student
is nearly always wrong on GSM8K whatever it is trained on: the accuracies are reported, not the point.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from drp_commands import DrpRunner, greedy_eval_args, training_args  # noqa: E402

TRACES = "data/traces/r1-distill-qwen-1.5b.e2h-gsm8k.jsonl"
VARIANTS = ("identity", "pruned")
# Continuous batching serves concurrent requests together (several times the throughput of one at a time on a
# CPU); its KV cache otherwise takes most of the free memory, which a shared machine cannot spare.
TRANSFORMERS_SERVER_ARGS = ["--continuous-batching", "--cb-max-memory-percent", "0.1"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="working folder; result.json is written here")
    parser.add_argument("--traces", default=None, help=f"trace file (default: ../shared/{TRACES})")
    parser.add_argument("--trace-limit", type=int, default=None, help="prune only the first N traces")
    parser.add_argument("--policy", default="rules", help="the pruning policy compared with identity")
    parser.add_argument("--teacher-url", default=None, help="OpenAI-compatible teacher, for an LLM policy")
    parser.add_argument("--teacher-model", default=None)
    parser.add_argument(
        "--run-arg",
        action="append",
        default=[],
        help="extra argument for the pruning `drp run` (repeatable), e.g. --run-arg=--concurrency=16",
    )
    parser.add_argument("--student", default="smollm2-135m-instruct", help="pulled model name, folder or hub id")
    parser.add_argument("--recipe", default="smollm2-135m-cpu")
    parser.add_argument(
        "--max-length", type=int, default=512, help="training examples must fit this many tokens in both variants"
    )
    parser.add_argument(
        "--train-examples", type=int, default=None, help="at most this many of the selected ids (default: all)"
    )
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--distill-arg",
        action="append",
        default=[],
        help="extra recipe override for both students (repeatable), e.g. --distill-arg=--use_peft=true",
    )
    parser.add_argument(
        "--eval-benchmark",
        default="gsm8k:train",
        help="problems neither student trained on (name[:split] or .jsonl, as `drp eval` takes it)",
    )
    parser.add_argument("--eval-problems", type=int, default=40)
    parser.add_argument("--max-tokens", type=int, default=512, help="generation cap, the same for both")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--backend", default="auto", help="drp serve backend: auto, vllm, transformers")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=None,
        help=f"argument for the server (repeatable; default for transformers: {' '.join(TRANSFORMERS_SERVER_ARGS)})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for training and serving (OMP_NUM_THREADS). Default: 1 when the machine "
        "is busy (load average at least half the cores), where threads spin waiting for each "
        "other and one is 2-4x faster; else the libraries' own choice",
    )
    args = parser.parse_args(argv)
    if args.threads is None and os.getloadavg()[0] >= (os.cpu_count() or 1) / 2:
        args.threads = 1
    return args


class Pipeline(DrpRunner):
    """The benchmark's settings, its working folder, and the time each stage took."""

    def __init__(self, args: argparse.Namespace):
        threads = {name: str(args.threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")} if args.threads else {}
        super().__init__(args.out, env=threads)
        self.args = args
        self.out = self.workdir
        self.stages: dict[str, float] = {}

    def stage(self, name: str, started: float) -> None:
        self.stages[name] = round(time.perf_counter() - started, 1)
        print(f"[{name}] {self.stages[name]:.0f} s", flush=True)


def student_path(pipeline: Pipeline) -> str:
    """A pulled model's folder (pulled on first use), or the path / hub id as given."""
    from drp.models import PULLABLE, resolve

    name = pipeline.args.student
    if name in PULLABLE:
        pipeline.drp("models", "pull", name, log="pull")
    return resolve(name)


def prune(pipeline: Pipeline, traces: str, tokenizer: str) -> None:
    args = pipeline.args
    common = ["--tokenizer", tokenizer, "--quiet", "--overwrite"]
    if args.trace_limit:
        common += ["--limit", str(args.trace_limit)]
    # exit status 1 = some traces failed (a teacher error): they are recorded, the accepted ones still count
    pipeline.drp("run", traces, "--policy", "identity", "--run-id", "identity", *common, log="run-identity")
    teacher = []
    if args.teacher_url:
        teacher = [
            "--teacher-url",
            args.teacher_url,
            *(["--teacher-model", args.teacher_model] if args.teacher_model else []),
        ]
    pipeline.drp(
        "run",
        traces,
        "--policy",
        args.policy,
        "--run-id",
        "pruned",
        *common,
        *teacher,
        *args.run_arg,
        log="run-pruned",
        ok=(0, 1),
    )


def rendered_lengths(export_dir: Path, tokenizer) -> dict[str, int]:
    """Trace id → tokens of its example exactly as `drp distill` renders it (chat-template prompt + completion)."""
    from drp.distill.data import render_example

    lengths = {}
    for line in (export_dir / "train.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        rendered = render_example(row, tokenizer, strip_bos=False)
        lengths[row["trace_id"]] = len(tokenizer(rendered["prompt"] + rendered["completion"])["input_ids"])
    return lengths


def select_and_export(pipeline: Pipeline, student: str) -> dict:
    """The ids both runs accepted whose examples fit max_length in both variants; each variant exported."""
    from transformers import AutoTokenizer

    args, out = pipeline.args, pipeline.out
    tokenizer = AutoTokenizer.from_pretrained(student)
    lengths = {}
    for variant in VARIANTS:
        pipeline.drp(
            "export",
            variant,
            "--out",
            str(out / "exports" / f"all-{variant}"),
            "--overwrite",
            log=f"export-all-{variant}",
        )
        lengths[variant] = rendered_lengths(out / "exports" / f"all-{variant}", tokenizer)
    both = sorted(set(lengths["identity"]) & set(lengths["pruned"]))
    fitting = [i for i in both if max(lengths[v][i] for v in VARIANTS) <= args.max_length]
    random.Random(args.seed).shuffle(fitting)
    chosen = set(fitting[: args.train_examples] if args.train_examples else fitting)
    if not chosen:
        raise SystemExit(f"no trace accepted by both runs fits {args.max_length} tokens: raise --max-length")
    for variant in VARIANTS:
        export_selected(pipeline, variant, chosen)
    mean = lambda variant: sum(lengths[variant][i] for i in chosen) / len(chosen)  # noqa: E731
    return {
        "accepted_by_both": len(both),
        "fitting_max_length": len(fitting),
        "train_examples": len(chosen),
        "train_tokens_mean": {v: round(mean(v), 1) for v in VARIANTS},
    }


def export_selected(pipeline: DrpRunner, run_id: str, keep: set[str], *options: str) -> None:
    """`drp export` of only the `keep` ids of a run's pruned.jsonl (its lines copied to selected/<run>.jsonl)."""
    out = pipeline.workdir
    lines = (out / "runs" / run_id / "pruned.jsonl").read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line)["id"] in keep]
    selected = out / "selected" / f"{run_id}.jsonl"
    selected.parent.mkdir(exist_ok=True)
    selected.write_text("\n".join(kept) + "\n", encoding="utf-8")
    pipeline.drp(
        "export", str(selected), *options, "--out", str(out / "exports" / run_id), "--overwrite", log=f"export-{run_id}"
    )


def distill(pipeline: Pipeline) -> None:
    args, out = pipeline.args, pipeline.out
    for variant in VARIANTS:
        pipeline.drp(
            "distill",
            "--recipe",
            args.recipe,
            "--dataset_name",
            str(out / "exports" / variant),
            "--output_dir",
            str(out / "students" / variant),
            "--overwrite_output_dir",
            *training_args(args),
            "--save_strategy",
            "no",
            "--logging_steps",
            "5",
            *args.distill_arg,
            log=f"distill-{variant}",
        )


def assert_held_out(pipeline: Pipeline) -> int:
    """The evaluated questions must not be training questions (the check the issue demands, not a hope)."""
    from drp.contamination import fingerprint
    from drp.evals.problem_sets import load_benchmark
    from drp.paths import shared_dir

    shared = shared_dir()
    benchmark = load_benchmark(
        pipeline.args.eval_benchmark, shared / "data" if shared else None, "auto", pipeline.args.eval_problems
    )
    trained = set()
    for variant in VARIANTS:
        for line in (pipeline.out / "exports" / variant / "train.jsonl").read_text(encoding="utf-8").splitlines():
            trained.add(fingerprint(json.loads(line)["question"]))
    overlap = [p.id for p in benchmark.problems if fingerprint(p.question) in trained]
    if overlap:
        raise SystemExit(
            f"{len(overlap)} evaluated problems of {benchmark.name} are training questions, "
            f"e.g. {', '.join(map(str, overlap[:3]))}: evaluate on problems neither student trained on"
        )
    if len(benchmark.problems) < pipeline.args.eval_problems:
        raise SystemExit(
            f"{benchmark.name} has only {len(benchmark.problems)} problems, "
            f"not the {pipeline.args.eval_problems} asked for"
        )
    return len(benchmark.problems)


def serve_and_eval(pipeline: Pipeline, variant: str) -> None:
    """`drp serve` the student, `drp eval` it against that server, stop the server."""
    from drp.serving import choose_backend

    args, out = pipeline.args, pipeline.out
    backend = choose_backend(args.backend, None)
    server_args = (
        args.server_arg
        if args.server_arg is not None
        else (TRANSFORMERS_SERVER_ARGS if backend == "transformers" else [])
    )
    with pipeline.served(
        str(out / "students" / variant), "--backend", backend, "--", *server_args, log=f"server-{variant}"
    ) as (url, model):
        pipeline.drp(
            *greedy_eval_args(args, url, model, out / "evals" / variant),
            *("--overwrite", "--quiet"),
            log=f"eval-{variant}",
        )


def summarise(pipeline: Pipeline, selection: dict, eval_problems: int, wall: float) -> dict:
    out = pipeline.out
    comparison = json.loads((out / "compare" / "comparison.json").read_text())
    benchmark = next(iter(comparison["benchmarks"].values()))
    base, pruned = benchmark["rows"][0], benchmark["rows"][1]
    metrics = {v: next(iter(json.loads((out / "evals" / v / "metrics.json").read_text()).values())) for v in VARIANTS}
    identity_tokens, pruned_tokens = base["tokens"]["mean"], pruned["tokens"]["mean"]
    return {
        "identity_tokens_mean": round(identity_tokens, 1),
        "pruned_tokens_mean": round(pruned_tokens, 1),
        "tokens_ratio": round(pruned_tokens / identity_tokens, 4) if identity_tokens else None,
        "wilcoxon_p": pruned["wilcoxon_tokens"]["pvalue"],
        "identity_accuracy": base["accuracy"]["mean"],
        "pruned_accuracy": pruned["accuracy"]["mean"],
        "mcnemar_p": pruned["mcnemar"]["pvalue"],
        "identity_length_capped": metrics["identity"]["length_capped"]["count"],
        "pruned_length_capped": metrics["pruned"]["length_capped"]["count"],
        # drp eval's own count of evaluated problems each student trained on (its train_questions.txt): 0
        "eval_problems_trained_on": {v: metrics[v]["contamination"]["trained_on"] for v in VARIANTS},
        "eval_problems": eval_problems,
        "eval_benchmark": pipeline.args.eval_benchmark,
        "max_tokens": pipeline.args.max_tokens,
        "train_examples": selection["train_examples"],
        "train_tokens_mean": selection["train_tokens_mean"],
        "accepted_by_both": selection["accepted_by_both"],
        "steps": pipeline.args.steps,
        "learning_rate": pipeline.args.learning_rate,
        "student": pipeline.args.student,
        "recipe": pipeline.args.recipe,
        "policy": pipeline.args.policy,
        "wall_seconds": round(wall, 1),
        "stage_seconds": pipeline.stages,
        "command_seconds": pipeline.seconds,
        "compare_report": str(out / "compare" / "report.md"),
        "load_average_at_end": list(os.getloadavg()),
        "cpus": os.cpu_count(),
        "threads": pipeline.args.threads,
    }


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from drp.paths import shared_dir

    traces = args.traces
    if traces is None:
        shared = shared_dir()
        if shared is None or not (shared / TRACES).is_file():
            raise SystemExit(f"no --traces given and ../shared/{TRACES} is absent")
        traces = str(shared / TRACES)
    pipeline = Pipeline(args)
    started = time.perf_counter()

    clock = time.perf_counter()
    student = student_path(pipeline)
    prune(pipeline, traces, student)
    pipeline.stage("prune", clock)

    clock = time.perf_counter()
    selection = select_and_export(pipeline, student)
    print(
        f"selected {selection['train_examples']} ids ({selection['accepted_by_both']} accepted by both, "
        f"{selection['fitting_max_length']} fit {args.max_length} tokens); mean training tokens "
        f"{selection['train_tokens_mean']}",
        flush=True,
    )
    eval_problems = assert_held_out(pipeline)
    pipeline.stage("export", clock)

    clock = time.perf_counter()
    distill(pipeline)
    pipeline.stage("distill", clock)

    clock = time.perf_counter()
    for variant in VARIANTS:
        serve_and_eval(pipeline, variant)
    pipeline.stage("eval", clock)

    clock = time.perf_counter()
    pipeline.drp(
        "compare",
        str(pipeline.out / "evals" / "identity"),
        str(pipeline.out / "evals" / "pruned"),
        "--out",
        str(pipeline.out / "compare"),
        log="compare",
    )
    pipeline.stage("compare", clock)

    result = summarise(pipeline, selection, eval_problems, time.perf_counter() - started)
    (pipeline.out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
