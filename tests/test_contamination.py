"""Training-question fingerprints, `drp export --exclude-benchmarks / --val-fraction`, what `drp distill`
keeps with the model, and how many evaluated problems `drp eval` and `drp compare` find among them. Runs are real
`drp run --policy rules` runs on the example traces."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TORCH_WORKER
from typer.testing import CliRunner

from drp.cli import app
from drp.contamination import (
    SIDECAR,
    TrainQuestionsError,
    find_train_questions,
    fingerprint,
    fingerprints,
    load_train_questions,
    normalise,
    read_sidecar,
    write_sidecar,
)
from drp.export.hygiene import split_validation
from drp.testing.scripted_teacher import ScriptedTeacher, Text

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "traces.jsonl"


def drp(*args, env: dict | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# the module fixture is built once, on one pytest-xdist worker (the one that imports torch: datasets, distill)
pytestmark = TORCH_WORKER


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict]:
    """A rules run over the example traces; returns (runs folder, env)."""
    folder = tmp_path_factory.mktemp("hygiene-runs")
    env = {"DRP_RUNS_DIR": str(folder)}
    result = drp("run", EXAMPLES, "--policy", "rules", "--run-id", "ex", env=env)
    assert result.exit_code == 0, result.output
    return folder, env


def accepted_questions(runs: Path) -> list[str]:
    return [r["question"] for r in read_jsonl(runs / "ex" / "pruned.jsonl")]


def test_the_fingerprint_ignores_case_spacing_and_unicode_forms():
    question = "Tom has 3 apples.\nHow many   apples?"
    assert normalise(question) == "tom has 3 apples. how many apples?"
    assert (
        fingerprint(question)
        == fingerprint("  TOM has 3 apples. How many apples? ")
        == fingerprint("Tom has \uff13 apples. How many apples?")
    )  # a full-width digit is the same digit
    assert fingerprint(question) != fingerprint("Tom has 4 apples. How many apples?")
    assert len(fingerprint(question)) == 16
    assert fingerprints([question, question.upper(), ""]) == [fingerprint(question)]


def test_export_excludes_benchmark_questions_and_records_every_training_question(run, tmp_path):
    runs, env = run
    questions = accepted_questions(runs)
    # A benchmark file holding one of the training questions, spaced and cased differently, plus another one.
    bench = tmp_path / "mybench.jsonl"
    bench.write_text(
        json.dumps({"question": "  " + questions[0].upper() + " ", "answer": "1"})
        + "\n"
        + json.dumps({"question": "What is 2 + 2?", "answer": "4"})
        + "\n"
    )
    out = tmp_path / "ds"
    result = drp(
        "export",
        "ex",
        "--out",
        out,
        "--exclude-benchmarks",
        f"{bench},math500",
        "--data-dir",
        REPO / "tests" / "data-that-is-not-there",
        env=env,
    )
    assert result.exit_code == 2 and "math500" in result.output  # a benchmark that cannot be read is an error
    result = drp("export", "ex", "--out", out, "--exclude-benchmarks", str(bench), env=env)
    assert result.exit_code == 0, result.output
    assert (
        "excluded 1 examples whose question is in an evaluation benchmark: mybench 1 (of its 2 questions)"
        in result.output
    )
    rows = read_jsonl(out / "train.jsonl")
    assert len(rows) == len(questions) - 1 and questions[0] not in {r["question"] for r in rows}
    expected = set(fingerprints(r["question"] for r in rows))
    assert read_sidecar(out / SIDECAR) == expected
    card = (out / "README.md").read_text()
    assert "**1** (mybench: 1)" in card and all(fp in card for fp in expected)
    manifest = json.loads((out / "drp_export.json").read_text())
    assert manifest["excluded"] == {
        "examples": 1,
        "per_benchmark": {"mybench": 1},
        "benchmark_questions": {"mybench": 2},
    }
    assert manifest["train_questions"] == {"file": SIDECAR, "count": len(expected)}
    assert load_train_questions(out) == expected == load_train_questions(out / "train.jsonl")


def test_excluding_every_question_is_an_error_not_an_empty_dataset(run, tmp_path):
    runs, env = run
    bench = tmp_path / "all.jsonl"
    bench.write_text("".join(json.dumps({"question": q, "answer": "0"}) + "\n" for q in accepted_questions(runs)))
    result = drp("export", "ex", "--out", tmp_path / "none", "--exclude-benchmarks", str(bench), env=env)
    assert result.exit_code == 2 and "nothing left to export" in result.output
    assert not (tmp_path / "none").exists()


def test_validation_split_is_by_question_deterministic_and_order_free(run, tmp_path):
    runs, env = run
    out = tmp_path / "split"
    result = drp("export", "ex", "--out", out, "--val-fraction", "0.3", env=env)
    assert result.exit_code == 0, result.output
    train, validation = read_jsonl(out / "train.jsonl"), read_jsonl(out / "validation.jsonl")
    assert validation and train and len(validation) >= 0.3 * (len(train) + len(validation))
    assert not {r["question"] for r in train} & {r["question"] for r in validation}
    # Only training questions count as trained on.
    assert read_sidecar(out / SIDECAR) == set(fingerprints(r["question"] for r in train))
    from datasets import load_from_disk

    assert set(load_from_disk(str(out))) == {"train", "validation"}
    # Same split from a reversed input; several traces of one question stay together.
    records = [{"question": q, "id": f"{i}-{k}"} for i, q in enumerate(accepted_questions(runs)) for k in range(3)]
    first = split_validation(records, 0.3)
    again = split_validation(list(reversed(records)), 0.3)
    assert {r["id"] for r in first[1]} == {r["id"] for r in again[1]}
    assert len(first[1]) % 3 == 0
    assert split_validation(records, 0.0) == (records, [])
    result = drp("export", "ex", "--out", tmp_path / "bad", "--val-fraction", "1", env=env)
    assert result.exit_code == 2


def test_a_training_questions_jsonl_names_its_bad_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"question": "a"}\n\n{"question": "caf\xe9"}\n')
    with pytest.raises(TrainQuestionsError, match=r"train\.jsonl:3: not UTF-8"):
        load_train_questions(path)
    path.write_text('{"question": "a"}\n\n{"question": \n', encoding="utf-8")
    with pytest.raises(TrainQuestionsError, match=r"train\.jsonl:3: not valid JSON"):
        load_train_questions(path)


def test_the_sidecar_is_found_next_to_a_model_or_its_merged_folder(tmp_path):
    student = tmp_path / "student"
    (student / "merged").mkdir(parents=True)
    (student / "drp_distill.json").write_text("{}")
    (student / SIDECAR).write_text("# header\nabc\n")
    assert find_train_questions(str(student)) == student / SIDECAR
    assert find_train_questions(str(student / "merged")) == student / SIDECAR
    other = tmp_path / "models" / "base"
    other.mkdir(parents=True)
    (tmp_path / "models" / SIDECAR).write_text("abc\n")  # not a distill output folder: not the model's
    assert find_train_questions(str(other)) is None
    assert find_train_questions("some-org/some-model") is None


@pytest.mark.slow
def test_distill_keeps_the_training_questions_and_evaluates_on_the_validation_split(run, tmp_path, smollm2):
    runs, env = run
    with_validation = tmp_path / "with-val"
    assert drp("export", "ex", "--out", with_validation, "--val-fraction", "0.3", env=env).exit_code == 0
    without = tmp_path / "without-val"
    assert drp("export", "ex", "--out", without, env=env).exit_code == 0
    common = [
        "--recipe",
        "smollm2-135m-cpu",
        "--max_steps",
        "1",
        "--per_device_train_batch_size",
        "1",
        "--eval_steps",
        "1",
        "--max_length",
        "1024",
        "--drop_long_examples",
        "true",
        "--save_strategy",
        "no",
        "--dataloader_pin_memory",
        "false",
    ]
    student = tmp_path / "student"
    result = drp("distill", *common, "--dataset_name", with_validation, "--output_dir", student)
    assert result.exit_code == 0, result.output
    assert "evaluating on the 'validation' split every 1 steps" in result.output
    assert "'eval_loss'" in result.output
    assert read_sidecar(student / SIDECAR) == read_sidecar(with_validation / SIDECAR)
    plain = tmp_path / "plain"
    result = drp("distill", *common, "--dataset_name", without, "--output_dir", plain)
    assert result.exit_code == 0, result.output
    assert "has no 'validation' split: no evaluation during training" in result.output
    assert read_sidecar(plain / SIDECAR) == read_sidecar(without / SIDECAR)


# ---------------------------------------------------------------- drp eval and drp compare count them

EVAL_GOLDS = ["3", "4", "5", "6", "7"]


@pytest.fixture
def eval_data(tmp_path) -> Path:
    root = tmp_path / "evaldata"
    (root / "gsm8k").mkdir(parents=True)
    with open(root / "gsm8k" / "test.jsonl", "w") as handle:
        for i, gold in enumerate(EVAL_GOLDS):
            handle.write(json.dumps({"question": f"Problem {i}: how many is {gold}?", "answer": f"#### {gold}"}) + "\n")
    return root


def _boxed(request):
    index = int(request["messages"][-1]["content"].split(":")[0].split()[1])
    return Text(f"thinking\n</think>\n\n\\boxed{{{EVAL_GOLDS[index]}}}")


def _eval(url, model, out, data, tokenizer, *extra):
    return CliRunner().invoke(
        app,
        [
            "eval",
            "--model-url",
            url,
            "--model",
            model,
            "--benchmarks",
            "gsm8k",
            "--data-dir",
            str(data),
            "--out",
            str(out),
            "--tokenizer",
            str(tokenizer),
            "--seeds",
            "1",
            "--quiet",
            "--retries",
            "0",
            *extra,
        ],
    )


def test_eval_counts_evaluated_problems_the_student_trained_on(tmp_path, eval_data, smollm2):
    # Two of the five questions were trained on (spelled differently: the fingerprint normalises them).
    trained = tmp_path / "trained.jsonl"
    trained.write_text(
        "".join(
            json.dumps({"question": q}) + "\n"
            for q in ("PROBLEM 1:  how many is 4?", "Problem 3: how many is 6?", "Another question")
        )
    )
    student_dir = tmp_path / "student"  # a distilled model folder: its sidecar is found without a flag
    student_dir.mkdir()
    write_sidecar(student_dir, fingerprints(["Problem 0: how many is 3?"]))
    with ScriptedTeacher(_boxed, models=("student", str(student_dir))) as teacher:
        explicit = _eval(
            teacher.url, "student", tmp_path / "explicit", eval_data, smollm2, "--train-questions", str(trained)
        )
        found = _eval(teacher.url, str(student_dir), tmp_path / "found", eval_data, smollm2)
        unknown = _eval(teacher.url, "student", tmp_path / "unknown", eval_data, smollm2)
    for result in (explicit, found, unknown):
        assert result.exit_code == 0, result.output

    metrics = json.loads((tmp_path / "explicit" / "metrics.json").read_text())["gsm8k"]
    assert metrics["contamination"] == {"checked": True, "trained_on": 2, "problem_ids": ["gsm8k_0001", "gsm8k_0003"]}
    assert "WARNING: gsm8k: 2 of 5 evaluated problems are questions the student trained on" in explicit.output
    assert "the student trained on 2 of the 5 evaluated problems" in " ".join(explicit.output.split())
    assert json.loads((tmp_path / "explicit" / "config.json").read_text())["train_questions"] == str(trained)

    found_metrics = json.loads((tmp_path / "found" / "metrics.json").read_text())["gsm8k"]
    assert found_metrics["contamination"]["trained_on"] == 1
    unknown_metrics = json.loads((tmp_path / "unknown" / "metrics.json").read_text())["gsm8k"]
    assert unknown_metrics["contamination"] == {"checked": False, "trained_on": None, "problem_ids": []}
    assert "contamination not checked" in unknown.output

    report = tmp_path / "report"
    compared = CliRunner().invoke(
        app, ["compare", str(tmp_path / "unknown"), str(tmp_path / "explicit"), "--out", str(report)]
    )
    assert compared.exit_code == 0, compared.output
    rows = json.loads((report / "comparison.json").read_text())["benchmarks"]["gsm8k"]["rows"]
    assert [row["contamination"]["trained_on"] for row in rows] == [None, 2]
    markdown = (report / "report.md").read_text()
    assert "| trained on |" in markdown and "| unknown |" in markdown and "| 2 ⚠ |" in markdown
    assert "WARNING: gsm8k: explicit's student trained on 2 of the 5 evaluated problems" in markdown
    assert "explicit&#39;s student trained on 2" in (report / "report.html").read_text()


def test_an_unreadable_train_questions_file_is_one_clear_error(tmp_path, eval_data, smollm2):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no question here"}\n')
    result = _eval(
        "http://127.0.0.1:9/v1", "student", tmp_path / "out", eval_data, smollm2, "--train-questions", str(bad)
    )
    assert result.exit_code == 2
    assert "--train-questions" in result.output and "no question or problem field" in result.output
