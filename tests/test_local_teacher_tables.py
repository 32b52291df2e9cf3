"""The figures of the local-teacher benchmark (benchmarks/local_teacher_table.py, benchmarks/teacher_tokens.py)
come from what the runs stored: two runs made against a real HTTP server on loopback that answers from a script."""

from __future__ import annotations

import importlib.util
import json

import pytest
from helpers import EXAMPLES, REPO, drp, example_records, traces_of, write_jsonl

from drp.testing.paper_responder import paper
from drp.testing.scripted_teacher import ScriptedTeacher
from drp.testing.skill_aware_responder import sensible


def _benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(url: str, run_id: str, policy: str, traces=EXAMPLES, limit: str = "3"):
    result = drp(
        "run",
        traces,
        "--policy",
        policy,
        "--teacher-url",
        url,
        "--teacher-model",
        "scripted",
        "--run-id",
        run_id,
        "--quiet",
        "--teacher-max-retries",
        "0",
        "--limit",
        limit,
    )
    assert result.exit_code == 0, result.output


def test_select_keeps_the_shortest_traces_in_order(tmp_path):
    records = example_records()
    out = tmp_path / "shortest.jsonl"
    _benchmark("local_teacher_table").select(write_jsonl(tmp_path / "all.jsonl", records), 3, out)
    picked = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(picked) == 3
    lengths = [len(r["response"]) for r in picked]
    assert lengths == sorted(lengths) and lengths[-1] <= min(len(r["response"]) for r in records if r not in picked)


def test_the_tables_add_up_what_the_runs_stored(tmp_path, capsys):
    with ScriptedTeacher(sensible) as teacher:
        _run(teacher.url, "ours", "skill-aware")
    with ScriptedTeacher(paper) as teacher:
        _run(teacher.url, "theirs", "paper", limit="2")  # fewer traces: only the shared ones are compared
    ours = traces_of("ours")
    theirs = {i: t for i, t in traces_of("theirs").items() if t["status"] != "pending"}

    row = _benchmark("local_teacher_table").row_of("ours")
    finished = [t for t in ours.values() if t["status"] != "pending"]
    assert row["traces"] == len(finished) == 3
    assert row["accepted"] + row["rejected"] + row["failed"] == 3
    assert row["tokens_out_per_trace"] == pytest.approx(
        sum(t["teacher_output_tokens"] for t in finished) / len(finished)
    )
    assert row["derivation_pass"] == row["accepted"]  # what the verifier accepted passes the recomputed check
    assert _benchmark("local_teacher_table").row_of("theirs")["echo_coverage_mean"] == pytest.approx(1.0)

    result = _benchmark("teacher_tokens").compare("ours", "theirs")
    assert result["traces"] == 2
    shared = {t["question"] for t in theirs.values()}
    out_ours = [t["teacher_output_tokens"] for t in ours.values() if t["question"] in shared]
    out_theirs = [t["teacher_output_tokens"] for t in theirs.values()]
    assert result["out_per_trace"] == pytest.approx([sum(out_ours) / 2, sum(out_theirs) / 2])
    assert result["out_ratio"] == pytest.approx(sum(out_ours) / sum(out_theirs))
    assert "2 shared traces" in capsys.readouterr().out
