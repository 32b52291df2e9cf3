"""From nothing to the paper's rows (DeepSeek-R1-Distill-Qwen-7B: GSM8K 917 → 328 tokens, 91.7% → 94.1%; MATH-500,
AIME24, AMC23 beside it) on one GPU.

    pip install -e '.[vllm]'     # or vLLM in its own virtualenv, then --vllm-bin PATH/TO/vllm
    export OPENAI_API_KEY=...    # the teacher's key (any OpenAI-compatible endpoint)
    python benchmarks/paper_gsm8k.py --work work/paper-gsm8k --teacher-url https://api.openai.com/v1 \\
        --teacher-model gpt-4o
    python benchmarks/paper_gsm8k.py --plan      # the steps, their commands, expected time and teacher tokens
    python benchmarks/paper_gsm8k.py --dry-run --work /tmp/paper-dry   # the same steps on tiny models, on a CPU
    python benchmarks/paper_gsm8k.py ... --base deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B   # the 1.5B row
    python benchmarks/paper_gsm8k.py ... --train-problems data/prm12k.jsonl   # GSM8K train plus MATH/PRM12K problems
    python benchmarks/paper_gsm8k.py ... --layout paper   # train in the paper's ChatML layout (see --help)

Steps (each a real `drp` command, logged under WORK/logs; a rerun resumes where drp commands resume):

1. `drp serve` the base model with vLLM (`--dtype half`, as the authors ran vLLM; the model's own context, 131,072
   tokens for the R1 distills, so the paper's 40,000 / 130,000-token caps fit); `drp generate` its own traces on
   GSM8K *train* (and on each `--train-problems` source; correct ones kept); `drp eval` the base on GSM8K, MATH-500,
   AIME24 and AMC23 under both protocols (drp's default and the paper's); stop the server.
2. `drp run` the traces with each pruning policy (`paper`, `skill-aware`) against the teacher endpoint.
3. `drp export` each run, dropping any question that is also in an evaluation benchmark
   (`--exclude-benchmarks`) and holding out 5% for validation (`--val-fraction 0.05`), as the paper did.
4. `drp distill` each with the recipe of the base's size (`r1-distill-qwen-7b-lora` or `-1.5b-lora`, or
   `--recipe`): the paper's LoRA rank 8 / alpha 16 / dropout 0 on all linear layers, lr 3e-5, 3 epochs, cosine,
   warmup 0.1, cutoff 4096, effective batch 8, bf16, validation every 300 steps, adapter merged.
5. `drp serve` each student with vLLM; `drp eval` it under both protocols; stop.
6. `drp compare` base against the students, once per protocol.

`--layout r1` (default) trains in the R1 layout the tokenizer's chat template gives, with drp's boxed-answer
instruction; `--layout paper` trains as the paper did: ChatML with Qwen's default system prompt (`--template
qwen`), the question alone as the user turn, every example closed by "The answer is N." (`drp export --instruction
'' --answer answer-line`). The paper protocol's raw prompts use no chat template either way.

`--dry-run` runs the same steps here with SmolLM2-135M-Instruct as base and student (`transformers serve` on the
CPU), one problem per benchmark, 8 new tokens per answer, two training steps of one example (validated after the
second) and scripted teachers (the ones the tests use) for both `skill-aware` and `paper`. A 135M base writes no
`<think>` block to prune, so the dry run prunes the repository's example traces after generating.
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from drp_commands import ONE_GREEDY_SAMPLE, REPO, DrpRunner  # noqa: E402

BASE = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
EVAL_BENCHMARKS = "gsm8k,math500,aime24,amc23"  # evaluated, and excluded from training
PROTOCOLS = ("default", "paper")
RECIPES = {"1.5b": "r1-distill-qwen-1.5b-lora", "7b": "r1-distill-qwen-7b-lora"}  # by the size in the base's name
LAYOUTS = {  # --layout → (export arguments, distill arguments)
    "r1": ([], []),
    "paper": (["--instruction", "", "--answer", "answer-line"], ["--template", "qwen"]),
}


def recipe_for(base: str) -> str:
    """The recipe of the base's size: a 1.5B base must not train with the 7B recipe."""
    name = Path(base).name.lower()
    for size, recipe in RECIPES.items():
        if f"-{size}" in name or f"_{size}" in name:  # "...-qwen-1.5b", "..._7b"; "-17b" is neither
            return recipe
    raise SystemExit(f"no built-in recipe for the base {base!r} (its name says neither 1.5B nor 7B): pass --recipe")


def combine_traces(files: list[Path], out: Path) -> int:
    """Several generated trace files as one for `drp run`; an id already taken is prefixed with its file's stem."""
    seen: set[str] = set()
    count = 0
    with open(out, "w", encoding="utf-8") as sink:
        for path in files:
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                record = json.loads(line)
                if str(record.get("id")) in seen:
                    record["id"] = f"{path.stem}/{record['id']}"
                seen.add(str(record.get("id")))
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
    return count


@dataclass(frozen=True)
class Estimate:
    """What one step costs on 1×H100, and where the figure comes from."""

    step: str
    time: str
    teacher_tokens: str
    basis: str


# Figures measured by us are marked so; the rest are arithmetic on them, or stated assumptions.
ESTIMATES = (
    Estimate(
        "1 generate + eval base",
        "≈ 1.5 h, plus the longest AIME sample",
        "0",
        "generate: 7,473 GSM8K train problems × ≈ 920 tokens (R1-Distill traces on GSM8K: 935 tokens mean, "
        "measured on the shared 1.5B traces; the paper's 7B base: 917) ≈ 6.9 M tokens; eval, per protocol: "
        "GSM8K 1,319 × ≈ 920 + MATH-500 500 × ≈ 2,500 (the paper's 2,486) + AIME24 30 × ≈ 13,000 + AMC23 40 × "
        "≈ 6,000 (R1-Distill-Qwen-7B's usual lengths there; not measured by us) ≈ 3.3 M tokens; ≈ 13.5 M in "
        "all at an assumed ≥ 2,500 output tokens/s for vLLM with a 7B model at 256 concurrent requests (not "
        "measured: `benchmarks/eval_throughput.py --model-url` measures yours). One sequence runs at tens of "
        "tokens/s, so an AIME answer near the 130,000-token cap alone takes tens of minutes. --train-problems "
        "adds its problems × their trace length",
    ),
    Estimate(
        "2 prune (per policy)",
        "≈ 1–2 h at 64 concurrent teacher calls",
        "paper ≤ 11 M in / 10 M out; skill-aware ≈ 19 M in / 4.4 M out",
        "≈ 6,800 correct traces × per-trace teacher tokens measured on 987 of the shared real traces "
        "(R1-Distill-Qwen tokenizer, retries included; an earlier session of this work, its script not kept): "
        "`paper` 1,653 in / 1,415 out in 2.0 calls (then with JSON replies; its free-text replies now stop at "
        "2,048 output tokens per call, as the paper's did), `skill-aware` 2,767 in / 646 out in 3.1 calls. "
        "The prompts were the real rendered ones; which teacher wrote the replies was not recorded, so the "
        "output figures are indicative only (a real teacher's echo in `paper` is about the thinking's length)",
    ),
    Estimate("3 export", "< 1 min", "0", "measured: 780 traces exported in ≈ 5 s on a 2-core CPU"),
    Estimate(
        "4 distill (per policy)",
        "≈ 1.5 h (7B; 1.5B ≈ ¼ of it)",
        "0",
        "3 epochs × ≈ 6,400 examples × ≈ 700 tokens ≈ 13 M tokens; 6 × 7.6 B params × tokens ≈ 6 × 10^17 "
        "FLOPs at an assumed 35% of the H100's bf16 peak, plus gradient checkpointing (× 1.33) and "
        "validation",
    ),
    Estimate(
        "5 eval students (per policy)",
        "≈ 40 min, plus the longest AIME sample",
        "0",
        "the four benchmarks under both protocols as in step 1, at the pruned lengths (the paper: GSM8K ≈ 330, "
        "MATH-500 ≈ 1,800 tokens) and the throughput assumed there",
    ),
    Estimate("6 compare", "seconds", "0", "measured: < 5 s for two 40-problem runs on a 2-core CPU"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("work/paper-gsm8k"), help="working folder")
    parser.add_argument("--base", default=BASE, help="the base reasoning model (hub id or folder)")
    parser.add_argument("--teacher-url", default=None, help="OpenAI-compatible teacher (key: OPENAI_API_KEY)")
    parser.add_argument("--teacher-model", default="gpt-4o")
    parser.add_argument("--policies", default="paper,skill-aware")
    parser.add_argument("--recipe", default=None, help="the distill recipe (default: the one of the base's size)")
    parser.add_argument(
        "--train-problems",
        default="",
        help="more training problems besides GSM8K train, comma-separated JSONL files or benchmarks "
        "(e.g. a MATH / PRM12K train file): the base generates its traces on each, pruned together",
    )
    parser.add_argument(
        "--layout",
        choices=sorted(LAYOUTS),
        default="r1",
        help="r1: the tokenizer's R1 layout with drp's instruction; paper: ChatML with Qwen's default "
        "system prompt and 'The answer is N.' closing every example, as the paper trained",
    )
    parser.add_argument(
        "--max-model-len",
        type=int,
        default=None,
        help="vLLM's context (default: the model's own; 131,072 for the R1 distills)",
    )
    parser.add_argument("--vllm-bin", default=None, help="the vllm program, when it lives in another virtualenv")
    parser.add_argument("--teacher-concurrency", type=int, default=64)
    parser.add_argument("--plan", action="store_true", help="print the steps with their estimates and exit")
    parser.add_argument("--dry-run", action="store_true", help="the same steps on tiny models, on this machine")
    args = parser.parse_args(argv)
    if not (args.plan or args.dry_run or args.teacher_url):
        parser.error("--teacher-url is required (or --dry-run / --plan)")
    if not (args.plan or args.dry_run or args.recipe):
        args.recipe = recipe_for(args.base)
    return args


@dataclass
class Settings:
    """Everything the dry run changes; the real run's values are the paper's."""

    base: str
    serve: list[str]
    train_problems: list[list[str]]  # one `drp generate` problems argument list per source
    test_limit: list[str]
    generate: list[str]
    traces: str | None  # None: the base model's own traces
    policies: list[str]
    teacher: dict[str, list[str]]  # policy → its teacher arguments for drp run
    export: list[str]
    distill: list[str]
    eval_cap: dict[str, list[str]]  # protocol → decoding / cap arguments


def extra_sources(args) -> list[list[str]]:
    return [[source.strip()] for source in args.train_problems.split(",") if source.strip()]


def real_settings(args) -> Settings:
    # --dtype half as the authors ran vLLM; no --max-model-len by default: the model's own context, which holds the
    # paper's 130,000-token cap for the R1 distills (the eval clips each cap to what the context leaves).
    vllm = [
        "--backend",
        "vllm",
        *(["--vllm-bin", args.vllm_bin] if args.vllm_bin else []),
        "--",
        "--dtype",
        "half",
        *(["--max-model-len", str(args.max_model_len)] if args.max_model_len else []),
        "--gpu-memory-utilization",
        "0.9",
    ]
    teacher = [
        "--teacher-url",
        args.teacher_url,
        "--teacher-model",
        args.teacher_model,
        "--concurrency",
        str(args.teacher_concurrency),
    ]
    export_layout, distill_layout = LAYOUTS[args.layout]
    return Settings(
        base=args.base,
        serve=vllm,
        train_problems=[["gsm8k:train"], *extra_sources(args)],
        test_limit=[],
        generate=[
            "--n",
            "1",
            "--temperature",
            "0.6",
            "--top-p",
            "0.95",
            "--max-tokens",
            "16384",
            "--require-think",
            "--concurrency",
            "256",
        ],
        traces=None,
        policies=args.policies.split(","),
        teacher={p: teacher for p in args.policies.split(",")},
        export=["--exclude-benchmarks", EVAL_BENCHMARKS, "--val-fraction", "0.05", *export_layout],
        distill=["--recipe", args.recipe, "--model_name_or_path", args.base, *distill_layout, "--merge"],
        eval_cap={
            "default": [
                *ONE_GREEDY_SAMPLE,
                "--max-tokens",
                "40000",
                "--concurrency",
                "256",
            ],
            "paper": ["--concurrency", "256"],
        },
    )


def dry_settings(args, teacher_urls: dict[str, str]) -> Settings:
    export_layout, distill_layout = LAYOUTS[args.layout]
    return Settings(
        base="smollm2-135m-instruct",
        serve=["--backend", "transformers"],
        train_problems=[
            ["gsm8k:train", "--limit", "1"],
            *([*source, "--limit", "1"] for source in extra_sources(args)),
        ],
        test_limit=["--limit", "1"],
        generate=[
            "--n",
            "1",
            "--temperature",
            "0",
            "--top-p",
            "1",
            "--max-tokens",
            "8",
            "--keep",
            "all",
            "--concurrency",
            "2",
        ],
        traces=str(REPO / "examples" / "traces.jsonl"),
        policies=["skill-aware", "paper"],
        teacher={
            policy: ["--teacher-url", url, "--teacher-model", "scripted-teacher", "--concurrency", "4"]
            for policy, url in teacher_urls.items()
        },
        export=["--exclude-benchmarks", EVAL_BENCHMARKS, "--val-fraction", "0.25", *export_layout],
        distill=[
            "--recipe",
            args.recipe or "smollm2-135m-cpu",
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "1",
            "--eval_steps",
            "2",  # validated once, after the last step
            "--max_length",
            "1024",
            "--drop_long_examples",
            "true",
            "--save_strategy",
            "no",
            *distill_layout,
        ],
        eval_cap={
            "default": [
                *ONE_GREEDY_SAMPLE,
                "--max-tokens",
                "8",
                "--concurrency",
                "2",
            ],
            "paper": ["--max-tokens", "8", "--concurrency", "2"],
        },
    )


def print_plan() -> None:
    print(f"{'step':<30} {'expected time (1×H100)':<40} teacher tokens")
    for estimate in ESTIMATES:
        print(f"{estimate.step:<30} {estimate.time:<40} {estimate.teacher_tokens}")
    print("\nwhere the figures come from:")
    for estimate in ESTIMATES:
        print(f"- {estimate.step}: {estimate.basis}")


def evaluate(runner: DrpRunner, settings: Settings, url: str, model: str, label: str) -> None:
    for protocol in PROTOCOLS:
        runner.drp(
            "eval",
            "--model-url",
            url,
            "--model",
            model,
            "--benchmarks",
            EVAL_BENCHMARKS,
            *settings.test_limit,
            "--protocol",
            protocol,
            *settings.eval_cap[protocol],
            "--quiet",
            "--out",
            str(runner.workdir / "evals" / f"{label}-{protocol}"),
            log=f"eval-{label}-{protocol}",
        )


def run(args, settings: Settings) -> dict:
    runner = DrpRunner(args.work)
    work = runner.workdir
    started = time.perf_counter()
    if settings.base == "smollm2-135m-instruct":
        runner.drp("models", "pull", settings.base, log="pull")

    # 1. the base model: its own traces on GSM8K train, and its scores on GSM8K test
    with runner.served(settings.base, *settings.serve, log="server-base") as (url, model):
        generated = []
        for index, problems in enumerate(settings.train_problems):
            out = work / ("traces.jsonl" if index == 0 else f"traces-{index}.jsonl")
            runner.drp(
                "generate",
                *problems,
                "--model-url",
                url,
                "--model",
                model,
                *settings.generate,
                "--out",
                str(out),
                "--quiet",
                log="generate" if index == 0 else f"generate-{index}",
            )
            generated.append(out)
        evaluate(runner, settings, url, model, "base")
    if len(generated) > 1:  # GSM8K train and the other sources, pruned as one trace file
        combine_traces(generated, work / "traces-all.jsonl")
    traces = settings.traces or str(work / ("traces-all.jsonl" if len(generated) > 1 else "traces.jsonl"))

    students = []
    for policy in settings.policies:
        # 2-4. prune with the teacher, export without evaluation questions, distill with the paper's recipe
        run_id = f"gsm8k-{policy}"
        resume = ["--resume"] if (work / "runs" / run_id / "drp.db").exists() else []
        runner.drp(
            "run",
            traces,
            "--policy",
            policy,
            "--run-id",
            run_id,
            *resume,
            *settings.teacher[policy],
            "--quiet",
            log=f"run-{policy}",
            ok=(0, 1),
        )
        export = work / "exports" / policy
        runner.drp(
            "export", f"gsm8k-{policy}", "--out", str(export), "--overwrite", *settings.export, log=f"export-{policy}"
        )
        student = work / "students" / policy
        runner.drp(
            "distill",
            *settings.distill,
            "--dataset_name",
            str(export),
            "--output_dir",
            str(student),
            "--overwrite_output_dir",
            log=f"distill-{policy}",
        )
        merged = student / "merged"
        # 5. the student, served and scored as the base was
        with runner.served(str(merged if merged.is_dir() else student), *settings.serve, log=f"server-{policy}") as (
            url,
            model,
        ):
            evaluate(runner, settings, url, model, policy)
        students.append(policy)

    # 6. one comparison per protocol: the base first (the baseline), then each student
    reports = {}
    for protocol in PROTOCOLS:
        folders = [str(work / "evals" / f"{label}-{protocol}") for label in ("base", *students)]
        runner.drp("compare", *folders, "--out", str(work / "reports" / protocol), log=f"compare-{protocol}")
        reports[protocol] = str(work / "reports" / protocol / "report.md")
    summary = {
        "work": str(work),
        "reports": reports,
        "seconds": runner.seconds,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    (work / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    if args.plan:
        print_plan()
        return None
    if not args.dry_run:
        return run(args, real_settings(args))
    with ExitStack() as stack:
        from drp.testing.paper_responder import paper
        from drp.testing.scripted_teacher import ScriptedTeacher
        from drp.testing.skill_aware_responder import sensible

        urls = {
            "skill-aware": stack.enter_context(ScriptedTeacher(sensible)).url,
            "paper": stack.enter_context(ScriptedTeacher(paper)).url,
        }
        return run(args, dry_settings(args, urls))


if __name__ == "__main__":
    main()
