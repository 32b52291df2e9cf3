"""The two pipeline scripts under benchmarks/: drp_effect_small.py (the DRP effect on a CPU) and paper_gsm8k.py
(the 1×GPU recipe to the paper's GSM8K row). Their fast parts here; whole runs on tiny settings are slow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

import drp_effect_small  # noqa: E402
import paper_gsm8k  # noqa: E402

EXAMPLES = REPO / "examples" / "traces.jsonl"


def _problems(path: Path, questions: list[str]) -> Path:
    path.write_text(
        "".join(json.dumps({"question": q, "answer": f"#### {i}"}) + "\n" for i, q in enumerate(questions)),
        encoding="utf-8",
    )
    return path


def _pipeline(tmp_path: Path, eval_file: Path, problems: int) -> drp_effect_small.Pipeline:
    args = drp_effect_small.parse_args(
        ["--out", str(tmp_path / "work"), "--eval-benchmark", str(eval_file), "--eval-problems", str(problems)]
    )
    pipeline = drp_effect_small.Pipeline(args)
    for variant, question in (("identity", "Tom has 3 apples. How many?"), ("pruned", "Ann has 5 pears.")):
        folder = pipeline.out / "exports" / variant
        folder.mkdir(parents=True)
        (folder / "train.jsonl").write_text(json.dumps({"question": question}) + "\n", encoding="utf-8")
    return pipeline


def test_effect_small_evaluates_only_problems_no_student_trained_on(tmp_path):
    held_out = _problems(tmp_path / "held_out.jsonl", ["Bo has 2 cats.", "Cy has 9 dogs."])
    assert drp_effect_small.assert_held_out(_pipeline(tmp_path, held_out, 2)) == 2

    # A training question, spelled with other case and spacing, is still caught.
    leaked = _problems(tmp_path / "leaked.jsonl", ["Bo has 2 cats.", "tom has  3 apples. how many?"])
    with pytest.raises(SystemExit, match="1 evaluated problems of .* are training questions"):
        drp_effect_small.assert_held_out(_pipeline(tmp_path / "b", leaked, 2))
    with pytest.raises(SystemExit, match="has only 2 problems"):
        drp_effect_small.assert_held_out(_pipeline(tmp_path / "c", held_out, 40))


def test_effect_small_threads_reach_every_drp_command(tmp_path, monkeypatch):
    args = drp_effect_small.parse_args(["--out", str(tmp_path), "--threads", "1"])
    env = drp_effect_small.Pipeline(args).env
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert env["DRP_RUNS_DIR"] == str(tmp_path.resolve() / "runs")
    # Unset: one thread on a busy machine, the libraries' own choice on an idle one.
    monkeypatch.setattr(drp_effect_small.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(drp_effect_small.os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    assert drp_effect_small.parse_args(["--out", str(tmp_path)]).threads == 1
    monkeypatch.setattr(drp_effect_small.os, "getloadavg", lambda: (0.2, 1.0, 1.0))
    assert drp_effect_small.parse_args(["--out", str(tmp_path)]).threads is None


def test_paper_plan_lists_every_step_with_time_teacher_tokens_and_basis(capsys):
    assert paper_gsm8k.main(["--plan"]) is None
    printed = capsys.readouterr().out
    for estimate in paper_gsm8k.ESTIMATES:
        assert estimate.step in printed and estimate.time in printed and estimate.basis in printed
    assert "measured" in printed


def test_paper_real_run_needs_a_teacher():
    with pytest.raises(SystemExit):
        paper_gsm8k.parse_args([])


@pytest.mark.slow
def test_effect_small_end_to_end_on_tiny_settings(tmp_path, smollm2):
    """Every stage for real (prune, export, distill, serve, eval, compare), one training step, two problems."""
    problems = _problems(tmp_path / "held_out.jsonl", ["What is 2 + 3?", "What is 10 - 4?"])
    result = drp_effect_small.main(
        [
            "--out",
            str(tmp_path / "work"),
            "--traces",
            str(EXAMPLES),
            "--steps",
            "1",
            "--max-length",
            "2048",
            "--eval-benchmark",
            str(problems),
            "--eval-problems",
            "2",
            "--max-tokens",
            "8",
            "--concurrency",
            "2",
            "--backend",
            "transformers",
            "--threads",
            "1",
        ]
    )
    written = json.loads((tmp_path / "work" / "result.json").read_text())
    assert written == result
    for key in (
        "identity_tokens_mean",
        "pruned_tokens_mean",
        "tokens_ratio",
        "wilcoxon_p",
        "identity_accuracy",
        "pruned_accuracy",
        "eval_problems",
        "train_examples",
        "steps",
        "wall_seconds",
        "compare_report",
    ):
        assert key in result, key
    assert result["eval_problems"] == 2 and result["steps"] == 1 and 0 < result["train_examples"] <= 8
    assert 0 < result["identity_tokens_mean"] <= 9 and 0 < result["pruned_tokens_mean"] <= 9
    assert result["tokens_ratio"] == pytest.approx(
        result["pruned_tokens_mean"] / result["identity_tokens_mean"], abs=0.01
    )
    assert result["eval_problems_trained_on"] == {"identity": 0, "pruned": 0}  # drp eval found the sidecars
    assert Path(result["compare_report"]).is_file()


def test_paper_recipe_follows_the_base_and_the_settings_are_the_papers(tmp_path):
    assert paper_gsm8k.recipe_for("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B") == "r1-distill-qwen-1.5b-lora"
    assert paper_gsm8k.recipe_for("/models/DeepSeek-R1-Distill-Qwen-7B") == "r1-distill-qwen-7b-lora"
    with pytest.raises(SystemExit, match="pass --recipe"):
        paper_gsm8k.recipe_for("Qwen/QwQ-32B")
    args = paper_gsm8k.parse_args(
        [
            "--teacher-url",
            "http://t/v1",
            "--base",
            "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
            "--train-problems",
            "data/prm12k.jsonl",
            "--layout",
            "paper",
        ]
    )
    settings = paper_gsm8k.real_settings(args)
    assert settings.distill[:4] == ["--recipe", "r1-distill-qwen-1.5b-lora", "--model_name_or_path", args.base]
    assert "--template" in settings.distill and settings.export[-4:] == ["--instruction", "", "--answer", "answer-line"]
    assert settings.serve[settings.serve.index("--dtype") + 1] == "half" and "--max-model-len" not in settings.serve
    assert settings.train_problems == [["gsm8k:train"], ["data/prm12k.jsonl"]]
    assert paper_gsm8k.EVAL_BENCHMARKS == "gsm8k,math500,aime24,amc23"

    first, second = tmp_path / "gsm8k.jsonl", tmp_path / "prm12k.jsonl"
    first.write_text('{"id": "1", "question": "a"}\n{"id": "2", "question": "b"}\n')
    second.write_text('{"id": "2", "question": "c"}\n')
    assert paper_gsm8k.combine_traces([first, second], tmp_path / "all.jsonl") == 3
    ids = [json.loads(line)["id"] for line in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert ids == ["1", "2", "prm12k/2"]


@pytest.mark.slow
def test_paper_gsm8k_dry_run(tmp_path, shared, smollm2):
    """The recipe's every step on tiny models here: base traces and scores, two policies, exports without
    benchmark questions, two-step distills, both protocols, one comparison per protocol."""
    summary = paper_gsm8k.main(["--dry-run", "--work", str(tmp_path / "work")])
    work = tmp_path / "work"
    assert set(summary["reports"]) == {"default", "paper"}
    for protocol, report in summary["reports"].items():
        text = Path(report).read_text()
        assert f"protocol: **{protocol}**" in text and "skill-aware" in text and "paper" in text
    for label in ("base", "skill-aware", "paper"):
        metrics = json.loads((work / "evals" / f"{label}-paper" / "metrics.json").read_text())
        assert set(metrics) == {"gsm8k", "math500", "aime24", "amc23"}
        assert metrics["gsm8k"]["protocol"] == "paper" and "lm_eval" in metrics["gsm8k"]
        assert "assumed prompt" in metrics["aime24"]["prompt_note"]
    card = json.loads((work / "exports" / "paper" / "drp_export.json").read_text())
    assert card["options"]["exclude_benchmarks"] and card["splits"].get("validation")
    assert (work / "students" / "paper" / "train_questions.txt").is_file()


def test_orchestration_is_one_script_whose_variants_are_checked_before_any_run():

    script = REPO / "benchmarks" / "orchestration.py"
    shown = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=REPO)
    assert shown.returncode == 0
    for variant in ("drp", "-tokens-client-graph", "ceiling"):
        assert variant in shown.stdout
    refused = subprocess.run(
        [sys.executable, str(script), "--compare", "drp,nosuch"], capture_output=True, text=True, cwd=REPO
    )
    assert refused.returncode != 0 and "unknown variant(s) nosuch" in refused.stderr
    assert not list((REPO / "benchmarks").glob("orchestration_*.py"))  # the old bounds and ceiling scripts


def test_orchestration_traces_are_distinct_copies_with_the_examples_numbers_and_answers():
    """drp keeps token counts and derivations by text: repeated copies would be read once and flatter the CPU
    figures, so every copy's question and reasoning are its own, with the example's numbers and answer."""
    import re

    import orchestration

    examples = orchestration.usable_examples()
    copies = orchestration.distinct_copies(examples, 3 * len(examples) + 1)
    assert len({c["id"] for c in copies}) == len(copies)
    assert len({c["response"] for c in copies}) == len({c["question"] for c in copies}) == len(copies)
    for index, copy in enumerate(copies):
        example = examples[index % len(examples)]
        assert copy["gold_answer"] == example["gold_answer"]
        for key in ("question", "response"):
            assert re.findall(r"\d+(?:\.\d+)?", copy[key]) == re.findall(r"\d+(?:\.\d+)?", example[key])
            assert copy[key].count("</think>") == example[key].count("</think>")
