"""Benchmark loaders on the real files in ../shared/data, the hub layout, and bad input; prompt templates."""

import json

import pytest
from helpers import TORCH_WORKER

from drp.evals.problem_sets import KNOWN, BenchmarkError, Fields, load_benchmark
from drp.evals.templates import TemplateError, fill_template, resolve_template


def test_real_local_benchmarks(shared):
    data = shared / "data"
    gsm8k = load_benchmark("gsm8k", data)
    assert len(gsm8k.problems) == 1319 and gsm8k.source.endswith("gsm8k/test.jsonl")
    first = gsm8k.problems[0]
    assert first.id == "gsm8k_0000" and first.gold == "18" and first.question.startswith("Janet")

    math500 = load_benchmark("math500", data)
    raw = [json.loads(line) for line in open(data / "math500" / "test.jsonl")]
    # Index-based ids equal the ids the file itself carries, so local and hub runs pair up.
    assert [p.id for p in math500.problems] == [r["id"] for r in raw]
    assert math500.problems[0].gold == raw[0]["answer"]

    aime = load_benchmark("aime24", data)
    assert len(aime.problems) == 30 and aime.problems[0].id == "60"
    amc = load_benchmark("amc23", data)
    assert len(amc.problems) == 40 and amc.problems[0].gold == "27"  # stored as 27.0

    train = load_benchmark("gsm8k:train", data, limit=5)
    assert train.name == "gsm8k:train" and len(train.problems) == 5
    assert train.problems[0].id == "gsm8k_train_0000"
    assert train.problems[0].question_sha != first.question_sha


@TORCH_WORKER  # read with Hugging Face datasets
def test_hub_source_gives_the_same_problems_as_the_local_file(shared, tmp_path):
    """A local copy laid out like the hub repo (README configs + parquet), read through `datasets`."""
    import datasets

    rows = [json.loads(line) for line, _ in zip(open(shared / "data" / "gsm8k" / "test.jsonl"), range(4))]
    repo = tmp_path / "gsm8k-repo"
    (repo / "main").mkdir(parents=True)
    datasets.Dataset.from_list(rows).to_parquet(str(repo / "main" / "test-00000-of-00001.parquet"))
    (repo / "README.md").write_text(
        "---\nconfigs:\n- config_name: main\n  data_files:\n  - split: test\n    path: main/test-*\n---\n"
    )
    # A hub id asked for by name goes to the hub even though a local copy exists in the data folder.
    hub = load_benchmark("openai/gsm8k", shared / "data", hub_repo=str(repo))
    local = load_benchmark("gsm8k", shared / "data", source="local", limit=4)
    assert hub.name == "gsm8k" and hub.source == f"{repo}:test"
    assert [(p.id, p.gold, p.question_sha) for p in hub.problems] == [
        (p.id, p.gold, p.question_sha) for p in local.problems
    ]


def test_hub_failure_names_both_places(tmp_path):
    with pytest.raises(BenchmarkError, match=r"no local file .*math500/test.jsonl.*loading .* failed"):
        load_benchmark("math500", tmp_path, source="auto", hub_repo=str(tmp_path / "missing-repo"))


def test_unknown_benchmark_lists_the_known_ones(tmp_path):
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark("gsm9k", tmp_path)
    message = str(caught.value)
    assert "unknown benchmark 'gsm9k'" in message
    for name in KNOWN:
        assert name in message
    assert "openai/gsm8k" in message


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(BenchmarkError, match="does not exist"):
        load_benchmark("gsm8k", tmp_path, source="local")
    (tmp_path / "gsm8k").mkdir()
    bad = tmp_path / "gsm8k" / "test.jsonl"
    bad.write_text('{"question": "1+1?", "answer": "#### 2"}\n{"question": "2+2?", "answer": \n')
    with pytest.raises(BenchmarkError, match=r"test.jsonl:2: not valid JSON"):
        load_benchmark("gsm8k", tmp_path)
    bad.write_text('{"question": "1+1?", "answer": "#### 2"}\n{"prompt": "2+2?", "answer": "#### 4"}\n')
    with pytest.raises(BenchmarkError, match=r"test.jsonl:2: none of the question fields"):
        load_benchmark("gsm8k", tmp_path)
    bad.write_text("[1, 2]\n")
    with pytest.raises(BenchmarkError, match="expected a JSON object"):
        load_benchmark("gsm8k", tmp_path)
    bad.write_text("\n")
    with pytest.raises(BenchmarkError, match="no problems"):
        load_benchmark("gsm8k", tmp_path)


def test_generic_problem_files_with_remapped_fields(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(
        json.dumps({"key": "a", "q": "What is 1/2 + 1/4?", "sol": "\\frac{3}{4}", "level": 3})
        + "\n"
        + json.dumps({"q": "What is 6*7?", "sol": "Six sevens.\n#### 42"})
        + "\n"
    )
    bench = load_benchmark(str(path), None, fields=Fields(question=("q",), answer=("sol",), id="key"))
    assert bench.name == "mine"
    assert [(p.id, p.gold) for p in bench.problems] == [("a", "\\frac{3}{4}"), ("mine_0001", "42")]
    assert bench.problems[0].extra == {"level": 3}
    path.write_text(json.dumps({"id": 1, "question": "x"}) + "\n" + json.dumps({"id": 1, "question": "y"}) + "\n")
    with pytest.raises(BenchmarkError, match="repeats the id '1'"):
        load_benchmark(str(path), None)


def test_prompt_templates(tmp_path):
    label, template = resolve_template(None)
    assert label == "r1-distill-qwen"
    assert fill_template(template, "What is $\\{1\\}$?") == (
        "What is $\\{1\\}$?\nPlease reason step by step, and put your final answer within \\boxed{}."
    )
    assert resolve_template("plain") == ("plain", "{problem}")
    file = tmp_path / "t.txt"
    file.write_text("Q: {problem}\nA:")
    assert resolve_template(str(file)) == (str(file), "Q: {problem}\nA:")
    assert resolve_template("Solve: {problem}") == ("custom", "Solve: {problem}")
    with pytest.raises(TemplateError, match="no {problem} placeholder"):
        resolve_template("r1-distill")
