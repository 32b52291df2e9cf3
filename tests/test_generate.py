"""`drp generate` against a scripted student on a real loopback server; its output goes through `drp run`."""

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from drp.answers import equivalent, extract_answer
from drp.cli import app
from drp.testing.scripted_teacher import Error, ScriptedTeacher, Sequence, Text, refused_url

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "traces.jsonl"


@pytest.fixture
def examples() -> list[dict]:
    return [json.loads(line) for line in open(EXAMPLES)]


@pytest.fixture
def problems(tmp_path, examples) -> Path:
    """The example questions as a training-problem file (its own field names)."""
    path = tmp_path / "problems.jsonl"
    with open(path, "w") as handle:
        for example in examples:
            handle.write(
                json.dumps(
                    {
                        "uid": example["id"],
                        "text": example["question"],
                        "gold_answer": example["gold_answer"],
                        "topic": "arithmetic",
                    }
                )
                + "\n"
            )
    return path


def student(examples):
    """Sample 0 is the example's own long CoT (cut traces are reported as cut); sample 1 never answers."""
    by_question = {e["question"]: e["response"] for e in examples}

    def reply(request):
        question = request["messages"][-1]["content"].split("\nPlease reason")[0]
        if request["seed"] % 2 == 1:
            return Text("Hmm, I am not sure how to start.\n</think>\n\nI do not know.")
        response = by_question[question]
        return Text(response, finish_reason="stop" if "</think>" in response else "length")

    return reply


def generate(url, problems, out, tokenizer, *extra):
    return CliRunner().invoke(
        app,
        [
            "generate",
            str(problems),
            "--model-url",
            url,
            "--model",
            "student",
            "--out",
            str(out),
            "--tokenizer",
            str(tokenizer),
            "--quiet",
            "--retries",
            "0",
            "--question-field",
            "text",
            "--id-field",
            "uid",
            "--max-tokens",
            "4096",
            *extra,
        ],
    )


def test_generate_keeps_correct_complete_traces_that_drp_run_reads(tmp_path, problems, examples, smollm2):
    out = tmp_path / "traces.jsonl"
    with ScriptedTeacher(student(examples), models=("student",)) as teacher:
        result = generate(teacher.url, problems, out, smollm2, "--n", "2", "--temperature", "0.7")
    assert result.exit_code == 0, result.output
    assert len(teacher.requests) == 16 and {r["temperature"] for r in teacher.requests} == {0.7}
    assert sorted(r["seed"] for r in teacher.requests) == [0] * 8 + [1] * 8

    expected = [
        e["id"]
        for e in examples
        if "</think>" in e["response"] and equivalent(e["gold_answer"], extract_answer(e["response"]))
    ]
    assert 0 < len(expected) < len(examples)  # the examples hold a wrong and a cut trace
    traces = [json.loads(line) for line in open(out)]
    assert [t["id"] for t in traces] == [f"{pid}_s0" for pid in expected]
    first = traces[0]
    source = next(e for e in examples if e["id"] == first["problem_id"])
    assert first["question"] == source["question"] and first["response"] == source["response"]
    assert first["gold_answer"] == source["gold_answer"] and first["correct"] is True
    assert first["model"] == "student" and first["temperature"] == 0.7 and first["max_tokens"] == 4096
    assert first["topic"] == "arithmetic" and first["tokens"] > 100 and first["finish_reason"] == "stop"
    every = [json.loads(line) for line in open(tmp_path / "traces.samples.jsonl")]
    assert len(every) == 16 and sum(r["extracted_answer"] is None for r in every) == 8
    assert "16 samples" in result.output and f"kept {len(expected)} (correct)" in result.output

    run = CliRunner().invoke(
        app, ["run", str(out), "--policy", "rules", "--run-id", "generated", "--tokenizer", str(smollm2), "--quiet"]
    )
    assert run.exit_code == 0, run.output
    from drp.paths import run_dir

    with sqlite3.connect(run_dir("generated") / "drp.db") as db:
        rows = db.execute("select id, gold_answer, status from traces order by line").fetchall()
    assert [r[0] for r in rows] == [t["id"] for t in traces]
    assert [r[1] for r in rows] == [t["gold_answer"] for t in traces]
    assert all(r[2] in ("accepted", "rejected") for r in rows)


def test_keep_all_with_one_sample_keeps_problem_ids(tmp_path, problems, examples, smollm2):
    out = tmp_path / "all.jsonl"
    with ScriptedTeacher(student(examples), models=("student",)) as teacher:
        result = generate(teacher.url, problems, out, smollm2, "--n", "1", "--keep", "all", "--limit", "3")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in open(out)] == [e["id"] for e in examples[:3]]


def test_require_think(tmp_path, problems, smollm2):
    with ScriptedTeacher(lambda r: Text("Easy: \\boxed{10}"), models=("student",)) as teacher:
        loose = generate(teacher.url, problems, tmp_path / "a.jsonl", smollm2, "--n", "1", "--limit", "1")
        strict = generate(
            teacher.url, problems, tmp_path / "b.jsonl", smollm2, "--n", "1", "--limit", "1", "--require-think"
        )
    assert loose.exit_code == strict.exit_code == 0
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 1  # demo-001's gold is 10
    assert (tmp_path / "b.jsonl").read_text() == ""


def test_errors_then_resume(tmp_path, problems, examples, smollm2):
    out = tmp_path / "traces.jsonl"
    reply = student(examples)
    script = Sequence(*(reply({"seed": 0, "messages": [{"content": e["question"]}]}) for e in examples[:3]), Error(500))
    with ScriptedTeacher(script, models=("student",)) as teacher:
        result = generate(
            teacher.url, problems, out, smollm2, "--n", "1", "--concurrency", "1", "--max-consecutive-errors", "0"
        )
    assert result.exit_code == 1 and "5 samples failed" in result.output
    assert len(out.read_text().splitlines()) == 3  # what was kept so far is already usable

    with ScriptedTeacher(reply, models=("student",)) as healthy:
        again = generate(healthy.url, problems, out, smollm2, "--n", "1")
    assert again.exit_code == 0, again.output
    assert len(healthy.requests) == 5
    ids = [json.loads(line)["id"] for line in open(out)]
    assert ids == [
        e["id"]
        for e in examples
        if "</think>" in e["response"] and equivalent(e["gold_answer"], extract_answer(e["response"]))
    ]

    with ScriptedTeacher(reply, models=("student",)) as other:
        refused = generate(other.url, problems, out, smollm2, "--n", "1", "--temperature", "0.2")
    assert refused.exit_code == 2 and "temperature=0.6" in refused.output
    assert other.requests == []


def test_generate_from_a_benchmark_split(tmp_path, smollm2):
    data = tmp_path / "data" / "gsm8k"
    data.mkdir(parents=True)
    (data / "train.jsonl").write_text(json.dumps({"question": "What is 2+2?", "answer": "2+2=4\n#### 4"}) + "\n")
    with ScriptedTeacher(lambda r: Text("2+2=4\n</think>\n\n\\boxed{4}"), models=("student",)) as teacher:
        result = CliRunner().invoke(
            app,
            [
                "generate",
                "gsm8k:train",
                "--data-dir",
                str(tmp_path / "data"),
                "--model-url",
                teacher.url,
                "--model",
                "student",
                "--out",
                str(tmp_path / "t.jsonl"),
                "--n",
                "1",
                "--tokenizer",
                str(smollm2),
                "--quiet",
            ],
        )
    assert result.exit_code == 0, result.output
    trace = json.loads((tmp_path / "t.jsonl").read_text())
    assert trace["id"] == "gsm8k_train_0000" and trace["gold_answer"] == "4" and trace["source"] == "gsm8k:train"


def test_bad_input(tmp_path, problems, smollm2):
    missing = generate(refused_url(), tmp_path / "nope.jsonl", tmp_path / "o.jsonl", smollm2)
    assert missing.exit_code == 2 and "does not exist" in missing.output
    no_gold = CliRunner().invoke(
        app,
        [
            "generate",
            str(problems),
            "--model-url",
            refused_url(),
            "--model",
            "m",
            "--out",
            str(tmp_path / "o.jsonl"),
            "--question-field",
            "text",
            "--answer-field",
            "solution",
            "--tokenizer",
            str(smollm2),
        ],
    )
    assert no_gold.exit_code == 2 and "have no gold answer" in no_gold.output
    down = generate(refused_url(), problems, tmp_path / "o.jsonl", smollm2)
    assert down.exit_code == 3 and "is not answering" in down.output
    bad_keep = generate(refused_url(), problems, tmp_path / "o.jsonl", smollm2, "--keep", "best")
    assert bad_keep.exit_code == 2 and "--keep must be one of" in bad_keep.output
