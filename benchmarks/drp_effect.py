"""The DRP effect on a CPU, with an LLM teacher and a student that solves problems: a student trained on
reasoning pruned by `skill-aware` thinks shorter than the same student trained on the same reasoning unpruned,
and is no less accurate.

    python benchmarks/drp_effect.py --out .cache/drp-effect          # rerun the same line to resume
    python benchmarks/drp_effect.py --out DIR --teacher-url URL --teacher-model M   # a teacher already served
    python benchmarks/drp_effect.py --out DIR --plan                 # the stages and what is done, nothing run

Stages (each a real `drp` command or a step of this script; a finished stage is recorded in DIR/stages.json and
skipped by a rerun with the same settings, and the unfinished ones resume: `drp run --resume`, `drp eval`'s own
samples.jsonl):

  prepare     `drp models pull` the student (Qwen2.5-Coder-0.5B-Instruct); the local teacher's llama-server
              build and Qwen2.5-Coder-1.5B-Instruct GGUF (benchmarks/local_teacher.sh --prepare-only)
  select      complete traces whose answer is the gold one and whose unpruned example fits --max-length in the
              student's tokenizer; --train-traces of them, drawn with --seed
  prune       `drp run` those ids twice: `identity` and `skill-aware` against the local teacher
  export      `drp export --answer short` both; keep the ids accepted by both whose examples fit --max-length
              in both arms, and check that each id's answer section (after </think>) is the same in both arms:
              the only difference between the two training sets is the thinking
  distill     two LoRA students from the same base, recipe, seed, learning rate and steps
  eval        the base and both students served by llama.cpp and evaluated greedily with the same cap on the
              same --eval-problems GSM8K *train* problems (the traces are GSM8K *test* problems; the script
              stops if an evaluated question is a training question)
  result      DIR/result.json: per model accuracy (Wilson 95% CI), thinking / answer / total tokens (split at
              </think>, student tokenizer), capped responses; thinking ratio (pruned / identity) with its
              Wilcoxon p; accuracy difference (pruned − identity) with a paired bootstrap 95% CI and McNemar's p
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import time
from functools import partial
from pathlib import Path

from drp_commands import REPO, DrpRunner, StepFailed, greedy_eval_args, training_args  # noqa: E402
from drp_effect_small import assert_held_out, export_selected, rendered_lengths  # noqa: E402  (the same checks, one place)

TRACES = "data/traces/r1-distill-qwen-1.5b.e2h-gsm8k.jsonl"
ARMS = ("identity", "pruned")
MODELS = ("base", *ARMS)
STAGES = (
    "prepare",
    "select",
    "prune",
    "export",
    "distill-identity",
    "distill-pruned",
    "eval-base",
    "eval-identity",
    "eval-pruned",
)
TEACHER_GGUF = "model/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"  # in local_teacher.sh's cache
# Settings whose change makes earlier stages' outputs wrong for this experiment: a rerun with other values
# is refused (use another --out) instead of mixing two experiments in one result.
PINNED = (
    "traces",
    "train_traces",
    "max_length",
    "policy",
    "student",
    "recipe",
    "steps",
    "learning_rate",
    "seed",
    "eval_benchmark",
    "eval_problems",
    "max_tokens",
    "teacher_url",
    "teacher_model",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="working folder (rerun with it to resume)")
    parser.add_argument("--traces", default=None, help=f"trace file (default: ../shared/{TRACES})")
    parser.add_argument(
        "--train-traces",
        type=int,
        default=80,
        help="how many selected traces to prune (the training set is those accepted by both arms)",
    )
    parser.add_argument("--max-length", type=int, default=512, help="training examples fit this many tokens")
    parser.add_argument("--policy", default="skill-aware")
    parser.add_argument(
        "--teacher-url",
        default=None,
        help="an OpenAI-compatible teacher already served (default: the local 1.5B teacher, "
        "served by this script with llama.cpp)",
    )
    parser.add_argument("--teacher-model", default=None)
    parser.add_argument("--structured-output", default="json_schema")
    parser.add_argument("--student", default="qwen2.5-coder-0.5b-instruct", help="pulled model name or folder")
    parser.add_argument("--recipe", default="qwen2.5-0.5b-cpu-lora")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--eval-benchmark", default="gsm8k:train")
    parser.add_argument("--eval-problems", type=int, default=100)
    parser.add_argument("--max-tokens", type=int, default=512, help="generation cap, the same for every model")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight to each served model")
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="CPU threads for training (OMP_NUM_THREADS) and for each llama-server (-t); the benchmark owns the CPU",
    )
    parser.add_argument("--plan", action="store_true", help="print the stages and which are done; run nothing")
    return parser.parse_args(argv)


class Stages:
    """DIR/stages.json: which stages finished, their wall seconds and what they found, and the pinned settings."""

    def __init__(self, out: Path, settings: dict):
        self.path = out / "stages.json"
        self.state = json.loads(self.path.read_text()) if self.path.is_file() else {"settings": settings, "stages": {}}
        changed = {
            k: (self.state["settings"].get(k), v)
            for k, v in settings.items()
            if k in PINNED and self.state["settings"].get(k) != v
        }
        if changed:
            described = ", ".join(f"{k}: {old!r} → {new!r}" for k, (old, new) in changed.items())
            raise SystemExit(f"{out} holds an experiment with other settings ({described}): use another --out")

    def done(self, name: str) -> bool:
        return bool(self.state["stages"].get(name, {}).get("done"))

    def info(self, name: str) -> dict:
        return self.state["stages"].get(name, {}).get("info", {})

    def finish(self, name: str, seconds: float, info: dict | None = None) -> None:
        self.state["stages"][name] = {"done": True, "seconds": round(seconds, 1), "info": info or {}}
        from drp.jsonl import atomic_write

        with atomic_write(self.path) as out:
            out.write(json.dumps(self.state, indent=2) + "\n")
        print(f"[{name}] done in {seconds:.0f} s", flush=True)

    def seconds(self) -> dict[str, float]:
        return {name: stage["seconds"] for name, stage in self.state["stages"].items()}


class Pipeline(DrpRunner):
    def __init__(self, args: argparse.Namespace):
        env = {name: str(args.threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")} if args.threads else {}
        super().__init__(args.out, env=env)
        self.args = args
        self.out = self.workdir


# --- prepare -------------------------------------------------------------------------------------------------------
def teacher_cache() -> Path:
    return Path(os.environ.get("DRP_LOCAL_TEACHER_CACHE") or REPO / ".cache" / "local-teacher")


def prepare(pipeline: Pipeline) -> dict:
    args = pipeline.args
    pipeline.drp("models", "pull", args.student, log="pull-student")
    if not args.teacher_url:
        script = REPO / "benchmarks" / "local_teacher.sh"
        with open(pipeline.logs / "prepare-teacher.log", "w") as log:
            code = subprocess.run(
                [str(script), "--prepare-only"], stdout=log, stderr=subprocess.STDOUT, env=pipeline.env
            ).returncode
        if code != 0:
            raise StepFailed(f"{script} --prepare-only failed; see {pipeline.logs / 'prepare-teacher.log'}")
    return {}


def llama_threads(args: argparse.Namespace) -> list[str]:
    """--threads for llama-server too; without it `drp serve` picks (one thread when the CPU is busy)."""
    return ["-t", str(args.threads)] if args.threads else []


# --- select --------------------------------------------------------------------------------------------------------
def select(pipeline: Pipeline, traces: str, student: str) -> dict:
    """Complete traces that reach their gold answer and whose unpruned example fits; --train-traces of them."""
    from transformers import AutoTokenizer

    from drp.answers import equivalent, extract_answer
    from drp.input_traces import load
    from drp.layout import split_response

    args = pipeline.args
    tokenizer = AutoTokenizer.from_pretrained(student)
    candidates, seen = [], 0
    for loaded in load(traces):
        seen += 1
        record = loaded.record
        if record is None:  # a malformed line: `drp run` would fail it, so it is never selected
            continue
        split = split_response(str(record.get("response") or ""))
        gold = record.get("gold_answer")
        if not split.complete or gold in (None, "") or not equivalent(str(gold), extract_answer(split.thinking)):
            continue
        # question + thinking + a short answer and the chat template's tokens: the example's length, closely
        length = len(tokenizer(record["question"] + "\n" + split.thinking)["input_ids"]) + 64
        if length <= args.max_length:
            candidates.append(
                {key: record[key] for key in ("id", "question", "response", "gold_answer")}
                | (record.get("extra") or {})
            )
    random.Random(args.seed).shuffle(candidates)
    chosen = candidates[: args.train_traces]
    path = pipeline.out / "selected-traces.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen), encoding="utf-8")
    return {"traces_read": seen, "fitting_and_correct": len(candidates), "selected": len(chosen)}


# --- prune ---------------------------------------------------------------------------------------------------------
def prune(pipeline: Pipeline, student: str) -> dict:
    args = pipeline.args
    traces = str(pipeline.out / "selected-traces.jsonl")
    common = ["--tokenizer", student, "--quiet"]
    run("identity", pipeline, [traces, "--policy", "identity", *common])
    if args.teacher_url:
        teacher = [
            "--teacher-url",
            args.teacher_url,
            *(["--teacher-model", args.teacher_model] if args.teacher_model else []),
        ]
        run(
            "pruned",
            pipeline,
            [
                traces,
                "--policy",
                args.policy,
                *common,
                *teacher,
                "--structured-output",
                args.structured_output,
                "--concurrency",
                "1",
            ],
        )
    else:
        gguf = teacher_cache() / TEACHER_GGUF
        # One slot per agent, as local_teacher.sh serves it: each keeps its system prompt cached between traces.
        with pipeline.served(
            str(gguf),
            "--backend",
            "llama.cpp",
            "--",
            "-c",
            "12288",
            "--parallel",
            "3",
            *llama_threads(args),
            log="server-teacher",
        ) as (url, model):
            run(
                "pruned",
                pipeline,
                [
                    traces,
                    "--policy",
                    args.policy,
                    *common,
                    "--teacher-url",
                    url,
                    "--teacher-model",
                    model,
                    "--structured-output",
                    args.structured_output,
                    "--concurrency",
                    "1",
                ],
            )
    return {arm: run_summary(pipeline, arm) for arm in ARMS}


def run(run_id: str, pipeline: Pipeline, argv: list[str]) -> None:
    """`drp run`, resumed when an earlier attempt left the run behind; exit 1 = some traces failed (recorded)."""
    resume = ["--resume"] if (pipeline.out / "runs" / run_id / "config.json").is_file() else []
    pipeline.drp("run", *argv, "--run-id", run_id, *resume, log=f"run-{run_id}", ok=(0, 1))


def run_summary(pipeline: Pipeline, run_id: str) -> dict:
    """The run's counts and teacher usage, as `drp stats --json` reports them."""
    done = subprocess.run(
        pipeline.command("stats", run_id, "--json"), capture_output=True, text=True, env=pipeline.env, cwd=pipeline.out
    )
    if done.returncode != 0:
        raise StepFailed(f"drp stats {run_id} failed: {done.stderr.strip()}")
    stats = json.loads(done.stdout)
    keys = (
        "traces",
        "accepted",
        "rejected",
        "failed",
        "reasons",
        "thinking_tokens_before_mean",
        "thinking_tokens_after_mean",
        "teacher_llm_calls",
        "teacher_calls_per_trace",
        "teacher_input_tokens_per_trace",
        "teacher_output_tokens_per_trace",
        "wall_seconds",
    )
    return {key: stats.get(key) for key in keys}


# --- export --------------------------------------------------------------------------------------------------------
def export(pipeline: Pipeline, student: str) -> dict:
    """Both arms exported with the same short answer section; the ids accepted by both that fit in both."""
    from transformers import AutoTokenizer

    args, out = pipeline.args, pipeline.out
    tokenizer = AutoTokenizer.from_pretrained(student)
    rows: dict[str, dict[str, dict]] = {}
    for arm in ARMS:
        folder = out / "exports" / f"all-{arm}"
        pipeline.drp("export", arm, "--answer", "short", "--out", str(folder), "--overwrite", log=f"export-all-{arm}")
        rows[arm] = {row["trace_id"]: row for row in read_rows(folder / "train.jsonl")}
    lengths = {arm: rendered_lengths(out / "exports" / f"all-{arm}", tokenizer) for arm in ARMS}
    both = sorted(set(rows["identity"]) & set(rows["pruned"]))
    chosen = [i for i in both if max(lengths[arm][i] for arm in ARMS) <= args.max_length]
    if not chosen:
        raise SystemExit(f"no trace accepted by both arms fits {args.max_length} tokens: raise --max-length")
    mismatched = answer_section_mismatches({arm: {i: rows[arm][i] for i in chosen} for arm in ARMS})
    if mismatched:
        raise SystemExit(
            f"{len(mismatched)} ids have different answer sections in the two arms "
            f"(e.g. {mismatched[0]}): the arms must differ only in their thinking"
        )
    for arm in ARMS:
        export_selected(pipeline, arm, set(chosen), "--answer", "short")
    thinking = {arm: mean([thinking_tokens(completion_text(rows[arm][i]), tokenizer) for i in chosen]) for arm in ARMS}
    return {
        "accepted_by_both": len(both),
        "train_examples": len(chosen),
        "answer_sections_equal": len(chosen),
        "train_thinking_tokens_mean": thinking,
        "train_tokens_mean": {arm: mean([lengths[arm][i] for i in chosen]) for arm in ARMS},
    }


def read_rows(path: Path) -> list[dict]:
    from drp.jsonl import read_jsonl

    return read_jsonl(path)


def completion_text(row: dict) -> str:
    """An exported row's completion as text, whether `drp export` wrote it as a string or as chat messages."""
    from drp.distill.data import assistant_text

    return assistant_text(row["completion"])


def answer_sections(rows: dict[str, dict]) -> dict[str, str | None]:
    """Trace id → the completion's text after </think> (None when the thinking never closes)."""
    from drp.layout import split_response

    sections = {}
    for trace_id, row in rows.items():
        split = split_response(completion_text(row))
        sections[trace_id] = split.answer_section if split.complete else None
    return sections


def answer_section_mismatches(arms: dict[str, dict[str, dict]]) -> list[str]:
    """Ids whose answer section differs between the arms (or is missing from one)."""
    first, *others = (answer_sections(rows) for rows in arms.values())
    return sorted(i for i in first if first[i] is None or any(other.get(i) != first[i] for other in others))


# --- distill -------------------------------------------------------------------------------------------------------
def distill(pipeline: Pipeline, arm: str) -> None:
    args, out = pipeline.args, pipeline.out
    pipeline.drp(
        "distill",
        "--recipe",
        args.recipe,
        "--model_name_or_path",
        args.student,
        "--dataset_name",
        str(out / "exports" / arm),
        "--output_dir",
        str(out / "students" / arm),
        "--overwrite_output_dir",
        *training_args(args),
        log=f"distill-{arm}",
    )


# --- eval ----------------------------------------------------------------------------------------------------------
def evaluate(pipeline: Pipeline, name: str, model: str) -> None:
    """Serve `model` with llama.cpp, `drp eval` it greedily (its samples.jsonl resumes), stop the server."""
    args = pipeline.args
    with pipeline.served(
        model,
        "--backend",
        "llama.cpp",
        "--",
        "--parallel",
        str(args.concurrency),
        *llama_threads(args),
        log=f"server-{name}",
    ) as (url, served):
        pipeline.drp(
            *greedy_eval_args(args, url, served, pipeline.out / "evals" / name),
            *("--tokenizer", args.student, "--quiet"),
            log=f"eval-{name}",
        )


# --- result --------------------------------------------------------------------------------------------------------
def mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def thinking_tokens(text: str, tokenizer) -> int:
    from drp.layout import split_response

    return len(tokenizer(split_response(text).thinking)["input_ids"]) if text else 0


def model_figures(samples: list[dict], count) -> dict:
    """One model's accuracy and tokens, the response split at </think> (a response that never closes its
    thinking is all thinking: its answer section is empty)."""
    from drp.layout import THINK_CLOSE, split_response

    correct = [bool(s.get("correct")) for s in samples]
    thinking, answer, total = [], [], []
    for s in samples:
        response = s.get("response") or ""
        split = split_response(response)
        thinking.append(count(split.thinking))
        answer.append(count(split.answer_section))
        total.append(count(response))
    low, high = wilson(sum(correct), len(correct))
    return {
        "accuracy": round(sum(correct) / len(correct), 4) if correct else None,
        "accuracy_ci95": [round(low, 4), round(high, 4)],
        "thinking_tokens_mean": mean(thinking),
        "answer_tokens_mean": mean(answer),
        "tokens_mean": mean(total),
        "capped": sum(1 for s in samples if s.get("finish_reason") == "length"),
        "without_think_close": sum(1 for s in samples if THINK_CLOSE not in (s.get("response") or "")),
        "errors": sum(1 for s in samples if s.get("error")),
        "problems": len(samples),
        "_per_problem": {"correct": correct, "thinking": thinking},
    }


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_samples(pipeline: Pipeline) -> dict[str, list[dict]]:
    """Each model's samples, on the problems every model answered (in one order)."""
    from drp.evals.evaluation import load_samples

    per_model = {}
    for name in MODELS:
        samples = next(iter(load_samples(pipeline.out / "evals" / name).values()), [])
        per_model[name] = {str(s["problem_id"]): s for s in samples if not s.get("error")}
    shared = sorted(set.intersection(*(set(p) for p in per_model.values())))
    return {name: [per_model[name][i] for i in shared] for name in MODELS}


def result(pipeline: Pipeline, stages: Stages, wall_this_run: float) -> dict:
    from transformers import AutoTokenizer

    from drp.evals.stats import bootstrap_ci, mcnemar_exact, wilcoxon_signed_rank
    from drp.models import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve(pipeline.args.student))
    count = lambda text: len(tokenizer(text)["input_ids"]) if text else 0  # noqa: E731
    samples = paired_samples(pipeline)
    models = {name: model_figures(samples[name], count) for name in MODELS}
    per = {name: models[name].pop("_per_problem") for name in MODELS}
    identity, pruned = per["identity"], per["pruned"]
    ratio = (
        models["pruned"]["thinking_tokens_mean"] / models["identity"]["thinking_tokens_mean"]
        if models["identity"]["thinking_tokens_mean"]
        else None
    )
    differences = [int(p) - int(i) for p, i in zip(pruned["correct"], identity["correct"])]
    low, high = bootstrap_ci(differences, n_resamples=10000)
    export_info, prune_info = stages.info("export"), stages.info("prune")
    seconds = stages.seconds()
    return {
        "models": models,
        "thinking_ratio": round(ratio, 4) if ratio is not None else None,
        "thinking_wilcoxon_p": wilcoxon_signed_rank(pruned["thinking"], identity["thinking"]).pvalue,
        "accuracy_diff": round(sum(differences) / len(differences), 4) if differences else None,
        "accuracy_diff_ci95": [round(low, 4), round(high, 4)],
        "mcnemar_p": mcnemar_exact(identity["correct"], pruned["correct"]).pvalue,
        "eval_problems": len(differences),
        "eval_benchmark": pipeline.args.eval_benchmark,
        "max_tokens": pipeline.args.max_tokens,
        "train_examples": export_info.get("train_examples"),
        "answer_sections_equal": export_info.get("answer_sections_equal"),
        "train_thinking_tokens_mean": export_info.get("train_thinking_tokens_mean"),
        "steps": pipeline.args.steps,
        "learning_rate": pipeline.args.learning_rate,
        "student": pipeline.args.student,
        "recipe": pipeline.args.recipe,
        "policy": pipeline.args.policy,
        "teacher": prune_info.get("pruned"),
        "selection": stages.info("select"),
        "wall_seconds": {"stages": seconds, "all": round(sum(seconds.values()) + wall_this_run, 1)},
        "cpus": os.cpu_count(),
        "load_average_at_end": list(os.getloadavg()),
    }


# --- main ----------------------------------------------------------------------------------------------------------
def traces_path(args: argparse.Namespace) -> str:
    if args.traces:
        return str(Path(args.traces).resolve())
    from drp.paths import shared_dir

    shared = shared_dir()
    if shared is None or not (shared / TRACES).is_file():
        raise SystemExit(f"no --traces given and ../shared/{TRACES} is absent")
    return str(shared / TRACES)


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    traces = traces_path(args)
    settings = {**{k: v for k, v in vars(args).items() if k in PINNED}, "traces": traces}
    args.out.mkdir(parents=True, exist_ok=True)
    stages = Stages(args.out, settings)
    if args.plan:
        for name in STAGES:
            print(f"{name:16} {'done' if stages.done(name) else 'to do'}")
        return None
    pipeline = Pipeline(args)
    from drp.models import resolve

    def stage(name: str, work) -> None:
        if stages.done(name):
            print(f"[{name}] already done", flush=True)
            return
        clock = time.perf_counter()
        info = work() or {}
        stages.finish(name, time.perf_counter() - clock, info)

    stage("prepare", lambda: prepare(pipeline))
    student = resolve(args.student)
    stage("select", lambda: select(pipeline, traces, student))
    stage("prune", lambda: prune(pipeline, student))
    stage("export", lambda: {**export(pipeline, student), "held_out_problems": assert_held_out(pipeline)})
    for arm in ARMS:
        stage(f"distill-{arm}", partial(distill, pipeline, arm))
    for name, model in (("base", student), *((arm, str(args.out / "students" / arm)) for arm in ARMS)):
        stage(f"eval-{name}", partial(evaluate, pipeline, name, model))
    clock = time.perf_counter()
    figures = result(pipeline, stages, time.perf_counter() - clock)
    (args.out / "result.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
