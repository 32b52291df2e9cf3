"""Issue 8, part 6: every input a user can get wrong ends as one line, `error: …`, and exit status 2 — never a
traceback — and values that make no sense are refused while the command line is parsed."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import EXAMPLES, TORCH_WORKER, drp, example_records, traces_of, write_jsonl

from drp.errors import EXIT_BAD_INPUT
from drp.evals.problem_sets import BenchmarkError, load_benchmark
from drp.paths import run_dir
from drp.testing.scripted_teacher import ScriptedTeacher, Text


def one_line_error(result, *fragments: str) -> str:
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)
    return result.output


@pytest.fixture
def finished_run(example_run):
    return example_run("done")


# ── inputs ────────────────────────────────────────────────────────────────────────────────────────────────────


def test_a_missing_input_file_makes_no_run(hermetic_runs, tmp_path):
    one_line_error(drp("run", tmp_path / "nope.jsonl", "--policy", "rules", "--run-id", "m"), "does not exist")
    assert not run_dir("m").exists()


def test_resume_after_the_input_moved_takes_its_new_place(tmp_path):
    first = write_jsonl(tmp_path / "a.jsonl", example_records())
    assert drp("run", first, "--policy", "rules", "--run-id", "moved", "--limit", "3", "--quiet").exit_code == 0
    moved = first.rename(tmp_path / "b.jsonl")
    # A run holds every input line from its start, so a resume needs no input file: it finishes from its own copy.
    result = drp("run", first, "--run-id", "moved", "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    assert {row["status"] for row in traces_of("moved").values()} <= {"accepted", "rejected"}
    assert len(traces_of("moved")) == len(example_records())
    result = drp("run", moved, "--run-id", "moved", "--resume", "--quiet")
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir("moved") / "config.json").read_text())["options"]["source"] == str(moved)
    other = write_jsonl(tmp_path / "other.jsonl", example_records()[:2])
    one_line_error(drp("run", other, "--run-id", "moved", "--resume"), f"reads {moved}, not {other}")


def test_a_folder_that_is_not_a_dataset(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("hello")
    one_line_error(drp("run", folder, "--policy", "rules", "--run-id", "f"), "is a folder but not a `datasets` folder")


def test_ids_questions_and_answers_that_are_not_text_are_reasons_not_reprs(tmp_path):
    good = example_records()[1]
    records = [
        {**good, "id": {"nested": 1}},
        {**good, "id": "q-list", "question": ["what", "is"]},
        {**good, "id": "g-dict", "gold_answer": {"value": 10}},
        {**good, "id": 7},
    ]
    source = write_jsonl(tmp_path / "odd.jsonl", records)
    assert drp("run", source, "--policy", "rules", "--run-id", "odd", "--quiet").exit_code == 1  # some failed
    rows = traces_of("odd")
    reasons = {row["reason"] for row in rows.values()}
    assert "invalid_id: the id is dict, not text or an integer" in reasons
    assert "missing_field: question is not text (list)" in reasons
    assert "invalid_record: gold_answer is dict, not text or a number" in reasons
    assert rows["7"]["status"] == "accepted"  # an integer id is an id
    assert not any("{'" in (row["id"] + (row["reason"] or "")) for row in rows.values())  # no Python repr anywhere


# ── policy overrides and options ──────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "setting, message",
    [
        ("max_retries=abc", "max_retries: Input should be a valid integer"),
        ("nosuch.key=1", "has no setting 'nosuch.key'"),
        ("nosuch=1", "nosuch: Extra inputs are not permitted"),
        ("max_retries", "--set wants KEY=VALUE"),
        ("max_retries=[", "is not YAML"),
        ("max_retries=-1", "max_retries: Input should be greater than or equal to 0"),
        ("agents.pruner.temperature=-2", "temperature: Input should be greater than or equal to 0"),
    ],
)
def test_bad_policy_overrides(setting, message):
    one_line_error(drp("run", EXAMPLES, "--policy", "rules", "--run-id", "s", "--set", setting), message)
    assert not run_dir("s").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (("--limit", "0"), "'--limit'"),
        (("--limit", "-3"), "'--limit'"),
        (("--concurrency", "0"), "'--concurrency'"),
        (("--workers", "0"), "'--workers'"),
        (("--teacher-timeout", "-1"), "'--teacher-timeout': -1 is not above 0"),
        (("--teacher-timeout", "0"), "'--teacher-timeout'"),
        (("--teacher-max-retries", "-1"), "'--teacher-max-retries'"),
        (("--structured-output", "bogus"), "'bogus' is not one of 'json_schema', 'function_calling'"),
        (("--field", "question"), "--field wants OURS=THEIRS"),
        (("--max-record-chars", "0"), "'--max-record-chars'"),
    ],
)
def test_values_that_make_no_sense_are_refused_while_parsing(args, message):
    one_line_error(drp("run", EXAMPLES, "--policy", "rules", "--run-id", "p", *args), message)
    assert not run_dir("p").exists()


def test_sampling_options_are_refused_while_parsing(tmp_path):
    one_line_error(
        drp("eval", "--model-url", "http://127.0.0.1:9/v1", "--model", "m", "--out", tmp_path / "o", "--timeout", "-1"),
        "'--timeout': -1 is not above 0",
    )
    one_line_error(
        drp(
            "generate",
            EXAMPLES,
            "--model-url",
            "http://127.0.0.1:9/v1",
            "--model",
            "m",
            "--out",
            tmp_path / "o.jsonl",
            "--max-consecutive-errors",
            "-2",
        ),
        "'--max-consecutive-errors'",
    )
    one_line_error(drp("no-such-command"), "No such command")


def test_a_tokenizer_that_cannot_be_loaded(finished_run, tmp_path):
    one_line_error(drp("stats", "done", "--tokenizer", "/bad"), "cannot load tokenizer '/bad'")
    one_line_error(drp("stats", "done", "--tokenizer", tmp_path / "missing"), "cannot load tokenizer")


def test_report_out_an_existing_folder(finished_run, tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    one_line_error(drp("report", "done", "--out", folder), "is a folder", str(folder / "report.html"))
    assert list(folder.iterdir()) == []


def test_prompts_render_needs_file_colon_id():
    one_line_error(drp("prompts", "render", "skill-aware", "pruner", "--trace", "nocolon"), "--trace wants FILE:ID")
    one_line_error(drp("prompts", "render", "skill-aware", "pruner", "--trace", "missing.jsonl:x"), "does not exist")


# ── benchmarks for eval and generate ──────────────────────────────────────────────────────────────────────────


def test_benchmark_files_not_utf8_with_a_bom_and_with_blank_lines(tmp_path):
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps({"question": "What is 1+1?", "answer": "2"}).encode() + b"\n")
    assert [p.question for p in load_benchmark(str(bom), None).problems] == ["What is 1+1?"]

    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(
        json.dumps({"question": "ok", "answer": "1"}).encode()
        + b"\n"
        + '{"question": "caf\xe9", "answer": "2"}\n'.encode("latin-1")
    )
    with pytest.raises(BenchmarkError, match=r"latin.jsonl:2: not UTF-8"):
        load_benchmark(str(latin), None)

    blanks = tmp_path / "blanks.jsonl"
    blanks.write_text('{"question": "a", "answer": "1"}\n\n\n{"question": "b", "answer": "2"}\n\n{"q": "c"}\n')
    with pytest.raises(BenchmarkError, match=r"blanks.jsonl:6: none of the question fields"):
        load_benchmark(str(blanks), None)
    blanks.write_text('{"question": "a", "answer": "1"}\n\n{"question": "b", "answer": \n')
    with pytest.raises(BenchmarkError, match=r"blanks.jsonl:3: not valid JSON"):
        load_benchmark(str(blanks), None)
    objects = tmp_path / "objects.jsonl"
    objects.write_text('{"id": {"x": 1}, "question": "a", "answer": "1"}\n')
    with pytest.raises(BenchmarkError, match=r"objects.jsonl:1: id must be a string or a number, got dict"):
        load_benchmark(str(objects), None)
    objects.write_text('{"question": {"text": "a"}, "answer": "1"}\n')
    with pytest.raises(BenchmarkError, match=r"objects.jsonl:1: question must be a string, got dict"):
        load_benchmark(str(objects), None)

    url = "http://127.0.0.1:9/v1"
    one_line_error(
        drp("eval", "--model-url", url, "--model", "m", "--out", tmp_path / "e", "--benchmarks", latin),
        "latin.jsonl:2: not UTF-8",
    )
    one_line_error(
        drp("generate", latin, "--model-url", url, "--model", "m", "--out", tmp_path / "g.jsonl"),
        "latin.jsonl:2: not UTF-8",
    )


def test_eval_out_a_file_and_generate_out_a_folder_fail_before_sampling(tmp_path):
    problems = write_jsonl(tmp_path / "p.jsonl", [{"question": "What is 1+1?", "answer": "2"}])
    a_file = tmp_path / "results.txt"
    a_file.write_text("keep me")
    folder = tmp_path / "traces"
    folder.mkdir()
    with ScriptedTeacher(lambda request: Text("2"), models=("m",)) as student:
        one_line_error(
            drp("eval", "--model-url", student.url, "--model", "m", "--out", a_file, "--benchmarks", problems),
            "is a file",
        )
        one_line_error(
            drp("generate", problems, "--model-url", student.url, "--model", "m", "--out", folder),
            "is a folder",
            str(folder / "traces.jsonl"),
        )
    assert student.requests == []  # nothing sampled
    assert a_file.read_text() == "keep me" and list(folder.iterdir()) == []


# ── distill recipes ───────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "line, message",
    [
        ("learning_rate: abc", "--learning_rate/--learning-rate: invalid float value: 'abc'"),
        ("learning_rate: [1, 2]", "learning_rate: [1, 2] is a list; the field takes a number"),
        ("learning_rate: -1.0e-4", "learning_rate: -0.0001 must be above 0"),
        ("max_steps: 2.5", "max_steps: 2.5 is a number; the field takes an integer"),
        ("max_steps: -5", "max_steps: -5 must be above 0"),
        ("num_train_epochs: -3", "num_train_epochs: -3"),
        ("per_device_train_batch_size: 0", "per_device_train_batch_size: 0 must be at least 1"),
        ("gradient_checkpointing: 3", "gradient_checkpointing: 3 is an integer; the field takes true or false"),
        ("lora_dropout: 1.5", "lora_dropout: 1.5 must be below 1"),
        ("output_dir: 5", "output_dir: 5 is an integer; the field takes a string or null (quote it)"),
    ],
)
@TORCH_WORKER
def test_distill_recipe_values_of_the_wrong_type_or_sign(tmp_path, line, message):
    from drp.paths import builtin_recipes_dir

    key = line.split(":")[0]
    base = (builtin_recipes_dir() / "smollm2-135m-cpu.yaml").read_text().splitlines()
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("\n".join([*(row for row in base if not row.startswith(f"{key}:")), line, ""]))
    one_line_error(drp("distill", "--recipe", recipe, "--dataset_name", tmp_path / "none"), message)


@TORCH_WORKER
def test_distill_command_line_values_of_the_wrong_type_or_sign(tmp_path):
    one_line_error(drp("distill", "--recipe", "smollm2-135m-cpu", "--max_steps", "xyz"), "invalid int value: 'xyz'")
    one_line_error(
        drp("distill", "--recipe", "smollm2-135m-cpu", "--learning_rate", "-1"), "learning_rate: -1.0 must be above 0"
    )


# ── run databases ─────────────────────────────────────────────────────────────────────────────────────────────


COMMANDS = (
    ("stats", "done"),
    ("stats", "done", "--json"),
    ("logs", "list", "done"),
    ("logs", "show", "done", "demo-002"),
    ("diff", "done", "demo-002"),
    ("report", "done"),
    ("export", "done", "--out", "{tmp}/sft"),
    ("run", str(EXAMPLES), "--run-id", "done", "--resume", "--quiet"),
)


@pytest.mark.parametrize("keep", ["50 bytes", "first page", "half", "all but a page"])
def test_a_truncated_run_database_is_one_line_for_every_command(finished_run, tmp_path, keep):
    db = finished_run / "drp.db"
    for leftover in ("drp.db-wal", "drp.db-shm"):
        (finished_run / leftover).unlink(missing_ok=True)
    data = db.read_bytes()
    size = {"50 bytes": 50, "first page": 4096, "half": len(data) // 2, "all but a page": len(data) - 4096}[keep]
    db.write_bytes(data[:size])
    for command in COMMANDS:
        args = [a.replace("{tmp}", str(tmp_path)) for a in command]
        output = one_line_error(drp(*args), str(db))
        assert "damaged" in output or "truncated" in output or "not an SQLite database" in output
    assert db.stat().st_size == size  # nothing wrote to it


def test_a_run_database_damaged_inside_is_one_line_for_every_command(finished_run, tmp_path):
    db = finished_run / "drp.db"
    data = bytearray(db.read_bytes())
    for page in range(2, len(data) // 4096):  # every page but the schema's: the file keeps its full length
        data[page * 4096 : page * 4096 + 64] = b"\xff" * 64
    db.write_bytes(bytes(data))
    for leftover in ("drp.db-wal", "drp.db-shm"):
        (finished_run / leftover).unlink(missing_ok=True)
    for command in COMMANDS:
        args = [a.replace("{tmp}", str(tmp_path)) for a in command]
        one_line_error(drp(*args), "the run database is damaged", "--overwrite")


# ── what `drp diff` shows ─────────────────────────────────────────────────────────────────────────────────────


def test_diff_shows_brackets_as_text(tmp_path):
    record = example_records()[1]
    thinking, _, answer = record["response"].partition("</think>")
    marked = (
        "We list the cases [a, b] and [/] and [bold red]not a style[/bold red] and [link=x]y[/link].\n\n" + thinking
    )
    source = write_jsonl(tmp_path / "markup.jsonl", [{**record, "id": "[m]", "response": marked + "</think>" + answer}])
    assert drp("run", source, "--policy", "identity", "--run-id", "markup", "--quiet").exit_code == 0
    from typer.testing import CliRunner

    from drp.cli import app

    result = CliRunner().invoke(app, ["diff", "markup", "[m]"], env={"COLUMNS": "400"})  # no line wrapped
    assert result.exit_code == 0, result.output
    assert "[m] accepted" in result.output
    line = next(row for row in result.output.splitlines() if "We list the cases" in row)
    for text in ("[a, b]", "[/]", "[bold red]not a style[/bold red]", "[link=x]y[/link]"):
        assert line.count(text) == 2, (text, line)  # in the original and in the pruned column


def test_the_damaged_database_is_the_one_named(finished_run, hermetic_runs, tmp_path):
    shutil.copytree(finished_run, hermetic_runs / "copy")
    db = hermetic_runs / "copy" / "drp.db"
    data = bytearray(db.read_bytes())
    for page in range(2, len(data) // 4096):
        data[page * 4096 : page * 4096 + 64] = b"\xff" * 64
    db.write_bytes(bytes(data))
    output = one_line_error(drp("report", "done", "--vs", "copy", "--out", tmp_path / "r.html"), str(db))
    assert str(finished_run / "drp.db") not in output
