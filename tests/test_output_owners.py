"""One guard for every writing command (drp/outputs.py): no output lands inside a drp run's folder, whatever
the command and with --overwrite or not, and no command writes over another command's output folder or its
files. The run stays byte for byte what it was, and resumable."""

from __future__ import annotations

import hashlib
import json

import pytest
from helpers import EXAMPLES, TORCH_WORKER, drp, one_line_error, write_jsonl

from drp.testing.scripted_teacher import refused_url


def _tree(folder):
    """Every file's digest, less SQLite's own -wal/-shm companions (reading a database may create them)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


@pytest.fixture
def runs(example_run):
    example_run("other", policy="identity")
    return example_run("done")


@pytest.fixture
def problems(tmp_path):
    return write_jsonl(tmp_path / "problems.jsonl", [{"id": "p1", "question": "What is 1 + 1?", "gold_answer": "2"}])


def _eval(problems, out, *extra):
    return drp(
        "eval",
        "--model-url",
        refused_url(),
        "--model",
        "student",
        "--benchmarks",
        problems,
        "--out",
        out,
        "--quiet",
        "--tokenizer",
        "none",
        *extra,
    )


def _generate(problems, out, *extra):
    return drp(
        "generate",
        problems,
        "--model-url",
        refused_url(),
        "--model",
        "student",
        "--out",
        out,
        "--quiet",
        "--tokenizer",
        "none",
        *extra,
    )


def _writers(problems, tmp_path):
    """Every writing command, as a function of its output path."""
    return {
        "eval": lambda out, *x: _eval(problems, out, *x),
        "generate": lambda out, *x: _generate(problems, out, *x),
        "export": lambda out, *x: drp("export", "other", "--out", out, *x),
        "report": lambda out, *x: drp("report", "other", "--out", out, *x),
        "compare": lambda out, *x: drp("compare", tmp_path / "no-eval-a", tmp_path / "no-eval-b", "--out", out),
        "serve-log": lambda out, *x: drp("serve", "no-such-model", "--log", out),
    }


TARGETS = {  # the writer → outputs inside the run `done`
    "eval": ["", "evals", "sub/deeper"],
    "generate": ["pruned.jsonl", "drp.db", "config.json", "new-traces.jsonl"],
    "export": ["", "dataset"],
    "report": ["drp.db", "config.json", "pruned.jsonl", "drp.db-wal", "notes.txt"],
    "compare": ["", "comparison"],
    "serve-log": ["drp.db", "pruned.jsonl", "server.log"],
}


@pytest.mark.parametrize("writer,name", [(w, n) for w, names in TARGETS.items() for n in names])
def test_no_command_writes_inside_a_run(runs, problems, tmp_path, writer, name):
    before = _tree(runs)
    target = runs / name if name else runs
    for extra in ((), ("--overwrite",)) if writer in ("eval", "generate", "export", "report") else ((),):
        result = _writers(problems, tmp_path)[writer](target, *extra)
        assert result.exit_code == 2 and one_line_error(result.output), (writer, name, result.output)
        assert "inside the drp run folder" in result.output, result.output
    assert _tree(runs) == before
    assert drp("run", EXAMPLES, "--run-id", "done", "--resume", "--quiet").exit_code == 0


def test_a_link_into_a_run_is_inside_it_too(runs, problems, tmp_path):
    (tmp_path / "looks-harmless").symlink_to(runs)
    before = _tree(runs)
    result = _eval(problems, tmp_path / "looks-harmless", "--overwrite")
    assert result.exit_code == 2 and "inside the drp run folder" in result.output, result.output
    assert _tree(runs) == before


def test_report_overwrite_never_replaces_another_runs_database(runs):
    before = _tree(runs)
    for target in ("drp.db", "config.json", "pruned.jsonl"):
        result = drp("report", "other", "--out", runs / target, "--overwrite")
        assert result.exit_code == 2 and "own files" in result.output, result.output
    assert _tree(runs) == before
    # A page in the run's own folder stays allowed (its default place), and may be replaced.
    assert drp("report", "done").exit_code == 0 and drp("report", "done").exit_code == 0
    assert drp("report", "other", "--out", runs / "other-vs.html").exit_code == 0


def test_no_command_writes_over_another_commands_output(runs, problems, tmp_path):
    export = tmp_path / "ds"
    assert drp("export", "done", "--out", export).exit_code == 0
    evals = tmp_path / "evals"
    evals.mkdir()
    (evals / "samples.jsonl").write_text(json.dumps({"benchmark": "x", "problem_id": "1", "seed": 0}) + "\n")
    (evals / "config.json").write_text("{}\n")
    before = _tree(tmp_path / "ds"), _tree(evals)
    attempts = [
        _eval(problems, export, "--overwrite"),
        _generate(problems, export / "train.jsonl", "--overwrite"),
        _generate(problems, evals / "samples.jsonl", "--overwrite"),
        drp("report", "done", "--out", evals / "config.json", "--overwrite"),
        drp("report", "done", "--out", export / "README.md", "--overwrite"),
        drp("export", "done", "--out", evals, "--overwrite"),
        drp("serve", "no-such-model", "--log", export / "train.jsonl"),
        drp("compare", evals, evals, "--out", export),
    ]
    for result in attempts:
        assert result.exit_code == 2 and one_line_error(result.output), result.output
    assert (_tree(tmp_path / "ds"), _tree(evals)) == before


@TORCH_WORKER
def test_distill_refuses_an_output_dir_inside_a_run(runs):
    pytest.importorskip("trl")
    before = _tree(runs)
    result = drp("distill", "--recipe", "smollm2-135m-cpu", "--dataset_name", "nowhere", "--output_dir", runs)
    assert result.exit_code == 2 and "inside the drp run folder" in result.output, result.output
    assert _tree(runs) == before
