"""Outputs never replace inputs or files they did not make: `report --out` never writes over a run's own
files, `generate --out` replaces only its own output (resume) unless told to, and `export` builds its dataset
under a fresh name instead of deleting a folder that happens to be called `<out>.partial`."""

from __future__ import annotations

import hashlib
import json

import pytest
from helpers import drp, one_line_error, write_jsonl

from drp.testing.scripted_teacher import ScriptedTeacher, Text, refused_url


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def finished(example_run):
    example_run("other", policy="identity")
    return example_run("done")


@pytest.mark.parametrize("name", ["drp.db", "config.json", "pruned.jsonl"])
def test_report_never_writes_over_a_runs_own_files(finished, name):
    target = finished / name
    before = _digest(target)
    for extra in ((), ("--overwrite",)):
        result = drp("report", "done", "--out", target, *extra)
        assert result.exit_code == 2 and one_line_error(result.output), result.output
        assert "own files" in result.output
        other = drp("report", "other", "--vs", "done", "--out", target, *extra)  # the run read with --vs too
        assert other.exit_code == 2 and "own files" in other.output, other.output
    assert _digest(target) == before
    assert drp("stats", "done").exit_code == 0


def test_report_replaces_an_earlier_report_but_a_users_file_only_when_told(finished, tmp_path):
    assert drp("report", "done").exit_code == 0  # the default place, twice: an earlier report is replaced
    assert drp("report", "done").exit_code == 0
    notes = tmp_path / "notes.html"
    notes.write_text("<p>my notes</p>")
    refused = drp("report", "done", "--out", notes)
    assert refused.exit_code == 2 and "--overwrite" in refused.output and notes.read_text() == "<p>my notes</p>"
    assert drp("report", "done", "--out", notes, "--overwrite").exit_code == 0
    assert "<title>drp report" in notes.read_text()
    assert not list(tmp_path.glob(".notes.html.*")), "no temporary file left beside the report"


def test_export_leaves_a_folder_named_like_its_partial_alone(finished, tmp_path):
    mine = tmp_path / "myds.partial"
    mine.mkdir()
    (mine / "keep.txt").write_text("the user's own folder")
    result = drp("export", "done", "--out", tmp_path / "myds")
    assert result.exit_code == 0, result.output
    assert (mine / "keep.txt").read_text() == "the user's own folder"
    assert (tmp_path / "myds" / "train.jsonl").is_file()
    again = drp("export", "done", "--out", tmp_path / "myds", "--overwrite")
    assert again.exit_code == 0 and (mine / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["myds", "myds.partial", "runs"]  # nothing else left


# ---------------------------------------------------------------- generate


@pytest.fixture
def problems(tmp_path):
    path = tmp_path / "problems.jsonl"
    return write_jsonl(
        path, [{"id": f"p{n}", "question": f"What is {n} + {n}?", "gold_answer": str(2 * n)} for n in range(1, 5)]
    )


def _generate(url, problems, out, tokenizer, *extra):
    return drp(
        "generate",
        problems,
        "--model-url",
        url,
        "--model",
        "student",
        "--out",
        out,
        "--tokenizer",
        tokenizer,
        "--quiet",
        "--retries",
        "0",
        "--n",
        "2",
        *extra,
    )


def _answer(request):
    question = request["messages"][-1]["content"]
    n = int(question.split("What is ")[1].split(" +")[0])
    return Text(f"{n} plus {n} is {2 * n}.\n</think>\n\n\\boxed{{{2 * n}}}")


def test_generate_never_replaces_a_file_it_did_not_write(tmp_path, problems, shared_tokenizer):
    existing = write_jsonl(
        tmp_path / "existing.jsonl", [{"id": f"t{n}", "question": "q", "response": "r"} for n in range(8)]
    )
    before = _digest(existing)
    with ScriptedTeacher(_answer, models=("student",)) as teacher:
        refused = _generate(teacher.url, problems, existing, shared_tokenizer)
        assert refused.exit_code == 2 and one_line_error(refused.output), refused.output
        assert "--overwrite" in refused.output and _digest(existing) == before and not teacher.requests
        # The problems file itself is never an output, --overwrite or not.
        for extra in ((), ("--overwrite",)):
            into_input = _generate(teacher.url, problems, problems, shared_tokenizer, *extra)
            assert into_input.exit_code == 2 and "problems file" in into_input.output, into_input.output
        assert len(problems.read_text().splitlines()) == 4

        # Its own output resumes: the samples file is appended to, OUT rebuilt from it.
        out = tmp_path / "traces.jsonl"
        assert _generate(teacher.url, problems, out, shared_tokenizer, "--limit", "2").exit_code == 0
        assert _generate(teacher.url, problems, out, shared_tokenizer).exit_code == 0
        assert len(teacher.requests) == 8 and len(out.read_text().splitlines()) == 8

        # OUT without its samples file holds nothing to resume from: replacing it takes --overwrite.
        (tmp_path / "traces.samples.jsonl").unlink()
        orphan = _generate(teacher.url, problems, out, shared_tokenizer)
        assert orphan.exit_code == 2 and "--overwrite" in orphan.output and len(out.read_text().splitlines()) == 8
        # A samples file generate did not write is no resume point either.
        (tmp_path / "traces.samples.jsonl").write_text(json.dumps({"note": "mine"}) + "\n")
        foreign = _generate(teacher.url, problems, out, shared_tokenizer)
        assert foreign.exit_code == 2 and "samples" in foreign.output, foreign.output
        assert len(teacher.requests) == 8

        replaced = _generate(teacher.url, problems, existing, shared_tokenizer, "--overwrite")
        assert replaced.exit_code == 0, replaced.output
    assert all("problem_id" in json.loads(line) for line in existing.read_text().splitlines())


def test_generate_refuses_before_asking_the_endpoint(tmp_path, problems, shared_tokenizer):
    existing = write_jsonl(tmp_path / "existing.jsonl", [{"id": "t", "question": "q", "response": "r"}])
    result = _generate(refused_url(), problems, existing, shared_tokenizer)
    assert result.exit_code == 2 and "not a file of drp generate" in result.output, result.output


def test_generate_resumes_again_and_again_after_a_torn_last_line(tmp_path, problems, shared_tokenizer):
    """A kill mid-write leaves the samples file's last line cut short: every later run resumes from it (the
    cut line is dropped, its sample drawn again), not just the first."""
    out = tmp_path / "traces.jsonl"
    samples = tmp_path / "traces.samples.jsonl"
    with ScriptedTeacher(_answer, models=("student",)) as teacher:
        assert _generate(teacher.url, problems, out, shared_tokenizer, "--limit", "2").exit_code == 0
        for torn in ('{"id": "p3_s0", "problem_id": "p3", "sam', '{"id": "p3_s1", "resp'):
            with open(samples, "a") as handle:
                handle.write(torn)  # what a kill in the middle of a write leaves
            for _ in range(2):
                again = _generate(teacher.url, problems, out, shared_tokenizer, "--limit", "3")
                assert again.exit_code == 0, again.output
            assert all(line.endswith("}") for line in samples.read_text().splitlines())
    records = [json.loads(line) for line in samples.read_text().splitlines()]
    assert sorted((r["problem_id"], r["sample"]) for r in records) == [(f"p{n}", k) for n in (1, 2, 3) for k in (0, 1)]
    assert len(teacher.requests) == 6 and len(out.read_text().splitlines()) == 6
