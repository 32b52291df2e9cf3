"""Comparing policies: `drp diff RUN_A RUN_B ID`, `drp stats RUN_A RUN_B …` and the `--set KEY=V1,V2` sweep."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import EXAMPLES, db_of, drp, one_line_error

from drp.paths import builtin_prompts_dir
from drp.run_diff import rows
from drp.testing.scripted_teacher import ScriptedTeacher
from drp.testing.skill_aware_responder import sensible


def _run(teacher, run_id: str, *extra: str):
    return drp(
        "run", EXAMPLES, "--teacher-url", teacher.url, "--teacher-model", "m", "--run-id", run_id, "--quiet", *extra
    )


# the module fixture is built once, on one pytest-xdist worker
pytestmark = pytest.mark.xdist_group("test_run_compare")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The same examples under skill-aware and under skill-aware without derivation protection, and rules."""
    import os

    runs = tmp_path_factory.mktemp("compare") / "runs"
    before = os.environ.get("DRP_RUNS_DIR")
    os.environ["DRP_RUNS_DIR"] = str(runs)
    try:
        with ScriptedTeacher(sensible) as teacher:
            assert _run(teacher, "a", "--teacher-price", "1,2").exit_code in (0, 1)
        with ScriptedTeacher(sensible) as teacher:
            assert _run(
                teacher, "b", "--teacher-price", "1,2", "--reuse", "a", "--set", "answer_section=keep"
            ).exit_code in (0, 1)
        assert drp("run", EXAMPLES, "--policy", "rules", "--run-id", "r", "--quiet", "--limit", "5").exit_code in (0, 1)
    finally:
        if before is not None:
            os.environ["DRP_RUNS_DIR"] = before
    return runs


@pytest.fixture
def runs_here(two_runs, monkeypatch):
    monkeypatch.setenv("DRP_RUNS_DIR", str(two_runs))
    return two_runs


def test_stats_of_several_runs_is_one_table_on_the_traces_they_share(runs_here):
    result = drp("stats", "a", "b", "r", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["shared"] == 5  # rules ran on the first five only
    a, b, r = data["runs"]
    assert [run["run_id"] for run in data["runs"]] == ["a", "b", "r"] and r["policy"] == "rules"
    first_five = [row for row in db_of("a").query("select * from traces order by line limit 5")]
    accepted = [row for row in first_five if row["status"] == "accepted"]
    assert a["accepted_share"] == pytest.approx(len(accepted) / 5)
    assert a["calls_per_trace"] == pytest.approx(sum(row["teacher_calls"] for row in first_five) / 5)
    # b needed as many calls per trace, all answered from a: none of them spent
    assert b["calls_per_trace"] == a["calls_per_trace"] and b["reused_share"] == 1.0 and b["cost"] == 0
    assert a["cost"] > 0 and a["reused_share"] == 0 and r["calls_per_trace"] == 0
    assert a["input_tokens_per_trace"] == b["input_tokens_per_trace"] > 0
    derivations = [json.loads(row["checks"])["derivation"] for row in accepted]
    assert a["derivation_pass"] == pytest.approx(sum(map(bool, derivations)) / len(derivations))
    # answer_section=keep keeps the whole answer section: responses shrink less than with `short`
    assert b["response_reduction"] < a["response_reduction"] and b["thinking_reduction"] == a["thinking_reduction"]
    text = drp("stats", "a", "b", "r").output
    assert "5 traces finished in all 3 runs" in text and "derivation check passed" in text
    for label in ("accepted", "teacher calls per trace", "cost spent on these traces", "wall time of the run"):
        assert label in text


def test_diff_of_two_runs_lines_up_the_steps(runs_here):
    shown = drp("diff", "a", "r", "demo-001")
    assert shown.exit_code == 0, shown.output
    assert "A = a (skill-aware)" in shown.output and "B = r (rules)" in shown.output and "checks:" in shown.output
    assert "A after </think>: " in shown.output and "B after </think>: " in shown.output
    missing = drp("diff", "a", "r", "nope")
    assert missing.exit_code == 2 and one_line_error(missing.output) and "in run a" in missing.output
    single = drp("diff", "a", "demo-001")  # one run, as before
    assert single.exit_code == 0 and "demo-001" in single.output


def test_steps_line_up_by_the_units_they_start_at():
    a = [
        {"unit_start": 1, "unit_end": 2, "text": "one two", "action": "KEEP", "skill": "s", "rewritten": None},
        {"unit_start": 3, "unit_end": 3, "text": "three", "action": "DELETE", "skill": "s", "rewritten": None},
    ]
    b = [
        {"unit_start": 1, "unit_end": 1, "text": "one", "action": "KEEP", "skill": "s", "rewritten": None},
        {"unit_start": 2, "unit_end": 3, "text": "two three", "action": "COMPRESS", "skill": "s", "rewritten": "2+3"},
    ]
    lined = rows(a, b)
    assert [(where, text) for where, text, _, _ in lined] == [("1–2", "one two"), ("2–3", "two three"), ("3", "three")]
    assert lined[1][2] is None and lined[2][3] is None


def test_a_sweep_runs_one_child_per_value_each_reusing_the_others(tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(builtin_prompts_dir() / "skill-aware", policies / "mine")
    with ScriptedTeacher(sensible) as teacher:
        result = drp(
            "run",
            EXAMPLES,
            "--policy",
            "mine",
            "--prompts-dir",
            policies,
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            "m",
            "--run-id",
            "sw",
            "--quiet",
            "--set",
            "answer_section=keep,short",
            "--set",
            "max_retries=1",
        )
        asked = len(teacher.requests)
    assert result.exit_code in (0, 1), result.output
    first, second = "sw.answer_section-keep", "sw.answer_section-short"
    assert f"run {first}:" in result.output and f"run {second}:" in result.output
    assert "8 traces finished in all 2 runs" in result.output
    one_run = db_of(first).execute("select sum(teacher_calls) from traces").fetchone()[0]
    # answer_section changes no prompt: the second child asked nothing
    assert asked == one_run and db_of(second).execute("select sum(teacher_calls) from traces").fetchone()[0] == 0
    config = json.loads((tmp_path / "runs" / second / "config.json").read_text())
    assert config["policy"]["answer_section"] == "short" and config["policy"]["max_retries"] == 1
    assert config["options"]["reuse"] == [str((tmp_path / "runs" / first).resolve())]


def test_a_yaml_list_is_one_value_not_a_sweep():
    from drp.sweep import split_sweeps

    plain, swept = split_sweeps(["taxonomy=[a, b]", "max_retries=0,1", "fallback='rules,reject'", "x=1"])
    assert plain == ["taxonomy=[a, b]", "fallback='rules,reject'", "x=1"] and swept == {"max_retries": ["0", "1"]}


def test_an_estimate_of_a_sweep_is_refused_in_one_line(tmp_path):
    result = drp("run", EXAMPLES, "--estimate", "--set", "max_retries=0,1", "--run-id", "sw")
    assert result.exit_code == 2 and one_line_error(result.output), result.output
    assert "--estimate projects one run" in result.output and not (tmp_path / "runs").exists()
