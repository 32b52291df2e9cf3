"""`drp export`: real runs made with `drp run --policy rules` on the project's example traces."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
from helpers import TORCH_WORKER
from typer.testing import CliRunner

from drp.cli import app
from drp.export import DEFAULT_INSTRUCTION, ExportError, export_dataset

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "traces.jsonl"


def drp(*args, env: dict | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env, catch_exceptions=False)


def make_run(runs: Path, run_id: str, traces: Path = EXAMPLES) -> Path:
    result = drp("run", traces, "--policy", "rules", "--run-id", run_id, env={"DRP_RUNS_DIR": str(runs)})
    assert result.exit_code == 0, result.output
    return runs / run_id


# the module fixture is built once, on one pytest-xdist worker (the one that imports torch: datasets, chat templates)
pytestmark = TORCH_WORKER


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Two rules-policy runs over the same example traces (so they share trace ids)."""
    folder = tmp_path_factory.mktemp("export-runs")
    make_run(folder, "rules-a")
    make_run(folder, "rules-b")
    return folder


def db_rows(run: Path, where: str = "status = 'accepted'") -> list[dict]:
    connection = sqlite3.connect(run / "drp.db")
    connection.row_factory = sqlite3.Row
    return [dict(row) for row in connection.execute(f"select * from traces where {where} order by line")]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_writes_jsonl_datasets_folder_and_card(runs, tmp_path):
    from datasets import load_from_disk

    run = runs / "rules-a"
    accepted = db_rows(run)
    assert accepted, "the rules policy should accept some of the example traces"
    result = drp("export", run, "--out", tmp_path / "sft")
    assert result.exit_code == 0, result.output
    assert f"{len(accepted)} examples" in result.output

    rows = read_jsonl(tmp_path / "sft" / "train.jsonl")
    loaded = load_from_disk(str(tmp_path / "sft"))["train"]
    assert len(rows) == len(loaded) == len(accepted)
    assert loaded.to_list() == rows
    assert {"id", "run", "trace_id", "prompt", "completion", "thinking", "answer_section"} <= set(loaded.column_names)

    by_id = {row["id"]: row for row in accepted}
    assert set(by_id) == {row["id"] for row in rows}
    for row in rows:
        source = by_id[row["id"]]
        assert row["run"] == "rules-a" and row["trace_id"] == row["id"]
        assert [m["role"] for m in row["prompt"]] == ["user"]
        assert row["prompt"][0]["content"] == f"{source['question']}\n{DEFAULT_INSTRUCTION}"
        assert [m["role"] for m in row["completion"]] == ["assistant"]
        text = row["completion"][0]["content"]
        thinking, _, answer = text.removeprefix("<think>\n").partition("\n</think>\n\n")
        assert text.startswith("<think>\n")
        assert thinking == source["pruned_thinking"].strip()
        assert answer == source["pruned_response"].partition("</think>")[2].strip()
        assert f"\\boxed{{{source['pruned_answer']}}}" in answer.replace(" ", "")
        assert row["thinking_tokens_after"] == source["thinking_tokens_after"]

    card = (tmp_path / "sft" / "README.md").read_text()
    policy, prompt_hashes = sqlite3.connect(run / "drp.db").execute("select policy, prompt_hashes from runs").fetchone()
    assert "| rules-a | rules |" in card and policy == "rules"
    for digest in json.loads(prompt_hashes).values():
        assert digest in card
    rejected = len(db_rows(run, "status != 'accepted'"))
    assert f"{len(accepted)} accepted" in card and f"{rejected} rejected" in card

    manifest = json.loads((tmp_path / "sft" / "drp_export.json").read_text())
    before = sum(r["thinking_tokens_before"] for r in accepted)
    after = sum(r["thinking_tokens_after"] for r in accepted)
    assert manifest["tokens"]["thinking_before"]["total"] == before
    assert manifest["tokens"]["thinking_after"]["total"] == after
    assert manifest["tokens"]["thinking_reduction"] == round(1 - after / before, 4)
    assert f"{1 - after / before:.1%}" in card


def test_short_answer_and_system_prompt(runs, tmp_path):
    summary = export_dataset(
        [str(runs / "rules-a")],
        tmp_path / "short",
        answer="short",
        system_prompt="You are a careful solver.",
        instruction=None,
    )
    rows = read_jsonl(summary.out / "train.jsonl")
    for row in rows:
        assert row["prompt"][0] == {"role": "system", "content": "You are a careful solver."}
        assert row["prompt"][1]["content"] == row["question"].strip()  # no instruction
        text = row["completion"][0]["content"]
        assert text.endswith(f"\n</think>\n\nThe final answer is $\\boxed{{{row['answer']}}}$.")
        assert row["thinking"] in text and row["answer_style"] == "short"


def test_mixing_runs_with_shared_ids(runs, tmp_path):
    a, b = str(runs / "rules-a"), str(runs / "rules-b")
    n = len(db_rows(runs / "rules-a"))
    with pytest.raises(ExportError, match=r"appear in more than one run.*rules-a & rules-b.*--duplicates"):
        export_dataset([a, b], tmp_path / "mixed")
    assert not (tmp_path / "mixed").exists()

    first = export_dataset([a, b], tmp_path / "first", duplicates="first")
    assert first.examples == n and first.per_run == {"rules-a": n} and first.dropped_duplicates == {"rules-b": n}

    both = export_dataset([a, b], tmp_path / "all", duplicates="all")
    rows = read_jsonl(both.out / "train.jsonl")
    assert both.per_run == {"rules-a": n, "rules-b": n}
    assert len({row["id"] for row in rows}) == 2 * n
    assert all(row["id"] == f"{row['run']}/{row['trace_id']}" for row in rows)
    card = (both.out / "README.md").read_text()
    assert "| rules-a |" in card and "| rules-b |" in card


def test_pruned_jsonl_is_a_source_too(runs, tmp_path):
    summary = export_dataset([str(runs / "rules-a" / "pruned.jsonl")], tmp_path / "from-jsonl")
    from_db = export_dataset([str(runs / "rules-a")], tmp_path / "from-db")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "run"} for r in rows]  # noqa: E731
    assert strip(read_jsonl(summary.out / "train.jsonl")) == strip(read_jsonl(from_db.out / "train.jsonl"))


def test_run_by_id_through_drp_runs_dir(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("DRP_RUNS_DIR", str(runs))
    assert export_dataset(["rules-b"], tmp_path / "by-id").per_run == {"rules-b": len(db_rows(runs / "rules-b"))}


def test_bad_inputs_name_the_run(hermetic_runs, tmp_path):
    wrong = [
        json.loads(line)
        for line in EXAMPLES.read_text().splitlines()
        if json.loads(line)["id"] in ("demo-007", "demo-008")
    ]
    traces = tmp_path / "wrong.jsonl"
    traces.write_text("".join(json.dumps(r) + "\n" for r in wrong))
    make_run(hermetic_runs, "all-rejected", traces)
    (tmp_path / "nothing.jsonl").write_text("")  # a run whose input holds no traces
    assert drp("run", tmp_path / "nothing.jsonl", "--policy", "rules", "--run-id", "empty-run").exit_code == 0

    for run, message in [
        ("all-rejected", r"run 'all-rejected' has no accepted traces \(2 rejected\)"),
        ("empty-run", r"run 'empty-run' is empty"),
        ("no-such-run", r"run 'no-such-run' not found"),
    ]:
        result = drp("export", run, "--out", tmp_path / "out")
        assert result.exit_code == 2
        assert re.search(message, result.output), result.output
        assert not (tmp_path / "out").exists()


def test_output_folder_is_protected(runs, tmp_path):
    run = str(runs / "rules-a")
    export_dataset([run], tmp_path / "sft")
    with pytest.raises(ExportError, match="--overwrite"):
        export_dataset([run], tmp_path / "sft")
    export_dataset([run], tmp_path / "sft", answer="short", overwrite=True)
    assert read_jsonl(tmp_path / "sft" / "train.jsonl")[0]["answer_style"] == "short"

    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="not a drp export"):
        export_dataset([run], tmp_path / "precious", overwrite=True)
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"


def test_cli_default_instruction_matches_the_library():
    from drp.commands.export import DEFAULT_INSTRUCTION as cli_default

    assert cli_default == DEFAULT_INSTRUCTION


def test_rendered_for_the_r1_student_keeps_thinking_and_answer(runs, tmp_path, shared_tokenizer):
    """The exported example, rendered the way distill trains on it, with the real R1-Distill-Qwen tokenizer."""
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    from drp.distill.data import render_dataset

    export_dataset([str(runs / "rules-a")], tmp_path / "sft")
    dataset = load_from_disk(str(tmp_path / "sft"))["train"]
    tokenizer = AutoTokenizer.from_pretrained(shared_tokenizer)
    rendered = render_dataset(dataset, tokenizer)
    for source, row in zip(dataset, rendered):
        assert row["prompt"].endswith("<｜Assistant｜><think>\n")
        assert source["question"] in row["prompt"] and DEFAULT_INSTRUCTION in row["prompt"]
        assert row["completion"] == (
            f"{source['thinking']}\n</think>\n\n{source['answer_section']}{tokenizer.eos_token}"
        )
        assert row["n_tokens"] == len(tokenizer(row["prompt"] + row["completion"])["input_ids"])


def test_export_prompts_the_student_as_eval_does(runs, tmp_path):
    """Train-time and eval-time prompts come from one place: the default family's user message."""
    from drp.evals.templates import fill_template, resolve_template

    _, template = resolve_template(None)
    summary = export_dataset([str(runs / "rules-a")], tmp_path / "sft")
    rows = read_jsonl(summary.out / "train.jsonl")
    assert rows and all(
        row["prompt"][-1]["content"] == fill_template(template, row["question"].strip()) for row in rows
    )


def test_answer_line_and_the_papers_chatml_layout(runs, tmp_path, shared_tokenizer):
    """`--answer answer-line` closes every example with the line the strict filter reads, and `template: qwen`
    renders it in the paper's ChatML layout (default system prompt, turns closed by <|im_end|>)."""
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    from drp.distill.data import render_dataset
    from drp.distill.sft import apply_template
    from drp.evals.protocols.lm_eval_filters import lm_eval_scores

    summary = export_dataset([str(runs / "rules-a")], tmp_path / "paper", answer="answer-line", instruction=None)
    rows = read_jsonl(summary.out / "train.jsonl")
    for row in rows:
        text = row["completion"][0]["content"]
        assert text.endswith(f"\n</think>\n\nThe answer is {row['answer']}.") and row["answer_style"] == "answer-line"
        assert lm_eval_scores(text, row["gold_answer"]).strict_correct

    tokenizer = AutoTokenizer.from_pretrained(shared_tokenizer)
    turn_end = apply_template(tokenizer, "qwen")
    dataset = load_from_disk(str(tmp_path / "paper"))["train"]
    for source, row in zip(dataset, render_dataset(dataset, tokenizer, turn_end)):
        assert row["prompt"] == (
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            f"assistant.<|im_end|>\n<|im_start|>user\n{source['question'].strip()}<|im_end|>\n"
            "<|im_start|>assistant\n"
        )
        assert row["completion"] == (
            f"<think>\n{source['thinking']}\n</think>\n\n{source['answer_section']}<|im_end|>{tokenizer.eos_token}"
        )
    with pytest.raises(Exception, match="template 'llama' is not one drp has"):
        apply_template(tokenizer, "llama")
