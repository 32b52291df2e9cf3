"""Teacher replies reused across runs (`drp run --reuse RUN`): exact by construction, never for retries or
failed replies, keyed on everything that decides a reply (a changed schema is asked again)."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import EXAMPLES, db_of, drp, one_line_error

from drp.paths import builtin_prompts_dir, run_dir
from drp.testing.scripted_teacher import ScriptedTeacher, Text
from drp.testing.skill_aware_responder import agent_of, sensible


@pytest.fixture
def policy_dir(tmp_path):
    root = tmp_path / "policies"
    shutil.copytree(builtin_prompts_dir() / "skill-aware", root / "mine")
    return root


def _run(teacher, run_id: str, *extra: str, policy_dir=None, source=EXAMPLES):
    where = ("--policy", "mine", "--prompts-dir", policy_dir) if policy_dir else ()
    return drp(
        "run",
        source,
        *where,
        "--teacher-url",
        teacher.url,
        "--teacher-model",
        "m",
        "--run-id",
        run_id,
        "--quiet",
        *extra,
    )


def _calls(run_id: str) -> list[dict]:
    return list(db_of(run_id).query("select * from calls where llm order by trace_id, seq"))


def _edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_the_same_policy_reusing_a_finished_run_gives_the_same_results_without_a_call():
    with ScriptedTeacher(sensible) as teacher:
        assert _run(teacher, "first").exit_code in (0, 1)
        asked_first = len(teacher.requests)
    with ScriptedTeacher(sensible) as teacher:
        again = _run(teacher, "again", "--reuse", "first")
        assert again.exit_code in (0, 1), again.output
        assert teacher.requests == []  # nothing was asked
    assert asked_first > 0
    assert (run_dir("again") / "pruned.jsonl").read_bytes() == (run_dir("first") / "pruned.jsonl").read_bytes()
    first, reused = _calls("first"), _calls("again")
    assert len(reused) == len(first)
    for source, call in zip(first, reused):
        assert call["reused_run"] == "first" and call["reused_trace"] == source["trace_id"]
        assert call["reused_seq"] == source["seq"] and call["raw_output"] == source["raw_output"]
        assert call["reuse_key"] == source["reuse_key"] is not None
    steps = "select trace_id, step, skill, action, text, rewritten from steps order by trace_id, step"
    assert list(db_of("again").query(steps)) == list(db_of("first").query(steps))
    trace_rows = "select id, status, reason, teacher_calls, reused_calls from traces order by id"
    spent = {row["id"]: row for row in db_of("again").query(trace_rows)}
    for row in db_of("first").query(trace_rows):
        assert spent[row["id"]]["status"] == row["status"] and spent[row["id"]]["teacher_calls"] == 0
        assert spent[row["id"]]["reused_calls"] == row["teacher_calls"]


def _pruner_breaks_first(request: dict) -> Text:
    """Sensible, but the pruner's first try (temperature 0) is not JSON: every pruner call is retried."""
    if agent_of(request) == "pruner" and not request.get("temperature"):
        return Text("I would rather not.")
    return sensible(request)


def test_retries_and_failed_replies_are_asked_again_never_reused():
    with ScriptedTeacher(_pruner_breaks_first) as teacher:
        assert _run(teacher, "flaky").exit_code in (0, 1)
    calls = _calls("flaky")
    failed = [c for c in calls if c["error"]]
    retries = [c for c in calls if (c["temperature"] or 0) > 0]
    assert failed and retries and all(c["node"] == "pruner" for c in failed + retries)
    assert all(c["reuse_key"] is None for c in retries)  # a retry is never keyed
    with ScriptedTeacher(sensible) as teacher:
        assert _run(teacher, "after", "--reuse", "flaky").exit_code in (0, 1)
        asked = [agent_of(r) for r in teacher.requests]
    # The pruner's first tries failed there: asked again here (and answered at once); the rest was reused.
    assert asked == ["pruner"] * len(failed)
    assert not [c for c in _calls("after") if c["node"] != "pruner" and c["reused_run"] is None]


def _loses_the_answer(request: dict) -> Text:
    from drp.testing.skill_aware_responder import answer_losing

    return answer_losing(request)


def test_a_verification_retry_at_a_raised_temperature_is_asked_again():
    with ScriptedTeacher(_loses_the_answer) as teacher:
        assert _run(teacher, "losing", "--set", "protect_derivation=false").exit_code in (0, 1)
    calls = _calls("losing")
    later = [c for c in calls if c["node"] == "pruner" and c["attempt"] > 1]
    assert later and all(c["temperature"] > 0 and c["reuse_key"] is None for c in later)
    with ScriptedTeacher(_loses_the_answer) as teacher:
        assert _run(teacher, "losing-again", "--reuse", "losing", "--set", "protect_derivation=false").exit_code in (
            0,
            1,
        )
        assert len(teacher.requests) == len(later)
        assert all(r["temperature"] > 0 for r in teacher.requests)
    rows = "select id, status, reason, attempts from traces order by id"
    assert list(db_of("losing-again").query(rows)) == list(db_of("losing").query(rows))


def test_a_teacher_fault_is_asked_again():
    from drp.testing.scripted_teacher import Error

    def fails_one(request: dict):
        if agent_of(request) == "classifier" and "Maya bakes" in json.dumps(request["messages"]):
            return Error(400)
        return sensible(request)

    with ScriptedTeacher(fails_one) as teacher:
        _run(teacher, "faulty")
    failed = [row["id"] for row in db_of("faulty").query("select id from traces where reason like 'teacher_error%'")]
    assert len(failed) == 1
    with ScriptedTeacher(sensible) as teacher:
        _run(teacher, "mended", "--reuse", "faulty")
        asked = {agent_of(r) for r in teacher.requests}
        assert teacher.requests and asked <= {"classifier", "pruner"}
    new = list(db_of("mended").query("select distinct trace_id from calls where llm and reused_run is null"))
    assert [row["trace_id"] for row in new] == failed


def _changed_labels_schema(monkeypatch):
    """The classifier's reply schema as a newer drp might write it: same name, same prompt, other JSON schema."""
    from pydantic import ConfigDict

    import drp.agents.classifier as classifier

    original = classifier.labels_schema

    def changed(step_count, taxonomy):
        base = original(step_count, taxonomy)
        return type(base.__name__, (base,), {"model_config": ConfigDict(json_schema_extra={"x-version": 2})})

    monkeypatch.setattr(classifier, "labels_schema", changed)


@pytest.mark.parametrize("change", ["schema", "structured_output", "model"])
def test_a_changed_schema_mode_or_model_is_asked_again(monkeypatch, change):
    with ScriptedTeacher(sensible) as teacher:
        _run(teacher, "before")
    first = {c["node"] for c in _calls("before")}
    extra: tuple[str, ...] = ()
    if change == "schema":
        _changed_labels_schema(monkeypatch)
    elif change == "structured_output":
        extra = ("--structured-output", "json_mode")
    with ScriptedTeacher(sensible) as teacher:
        if change == "model":
            result = drp(
                "run",
                EXAMPLES,
                "--teacher-url",
                teacher.url,
                "--teacher-model",
                "other",
                "--run-id",
                "after",
                "--quiet",
                "--reuse",
                "before",
            )
        else:
            result = _run(teacher, "after", "--reuse", "before", *extra)
        assert result.exit_code in (0, 1), result.output
        asked = [agent_of(r) for r in teacher.requests]
    if change == "schema":  # only the classifier's schema changed: its calls and what follows them are asked
        assert "classifier" in asked and "segmenter" not in asked
    else:
        assert sorted(asked) == sorted(c["node"] for c in _calls("before")) and first
    rows = "select id, status from traces order by id"
    assert list(db_of("after").query(rows)) == list(db_of("before").query(rows))


def test_a_run_resumed_under_a_changed_policy_lends_each_reply_under_its_own_key(policy_dir):
    with ScriptedTeacher(sensible) as teacher:
        assert _run(teacher, "mixed", "--limit", "3", policy_dir=policy_dir).exit_code in (0, 1)
    _edit(policy_dir / "mine" / "pruner.yaml", "system: |", "system: |\n  Be brief.")
    with ScriptedTeacher(sensible) as teacher:
        resumed = drp(
            "run",
            EXAMPLES,
            "--run-id",
            "mixed",
            "--resume",
            "--allow-policy-change",
            "--quiet",
            "--teacher-url",
            teacher.url,
        )
        assert resumed.exit_code in (0, 1), resumed.output
    hashes = {row["policy_hash"] for row in db_of("mixed").query("select distinct policy_hash from calls")}
    assert len(hashes) == 2
    # A new run under the changed policy: traces made under it there are reused whole; the first three had the
    # old pruner prompt, so only their pruner calls are asked.
    with ScriptedTeacher(sensible) as teacher:
        assert _run(teacher, "reader", "--reuse", "mixed", policy_dir=policy_dir).exit_code in (0, 1)
        asked = [agent_of(r) for r in teacher.requests]
    lines = {row["id"]: row["line"] for row in db_of("mixed").query("select id, line from traces")}
    old_pruner = [c for c in _calls("mixed") if c["node"] == "pruner" and lines[c["trace_id"]] <= 3]
    assert asked == ["pruner"] * len(old_pruner) and old_pruner
    new = list(db_of("reader").query("select distinct trace_id from calls where llm and reused_run is null"))
    assert {lines[row["trace_id"]] for row in new} <= {1, 2, 3}
    rows = "select id, status, pruned_response from traces where line > 3 order by id"
    assert list(db_of("reader").query(rows)) == list(db_of("mixed").query(rows))


def test_a_run_that_was_killed_midway_lends_what_it_finished(tmp_path):
    import os
    import subprocess

    from helpers import DRP, example_records, kill_once_finished, write_jsonl

    # 24 traces, each its own question (copies would share their requests, and so their replies)
    source = write_jsonl(
        tmp_path / "traces.jsonl",
        [
            {**r, "id": f"{r['id']}-{n}", "question": f"{r['question']} (Copy {'abc'[n]}.)"}
            for n in range(3)
            for r in example_records()
        ],
    )
    with ScriptedTeacher(sensible, latency=0.05) as teacher:
        command = [
            *DRP,
            "run",
            source,
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            "m",
            "--run-id",
            "killed",
            "--concurrency",
            "2",
            "--quiet",
        ]
        process = subprocess.Popen(
            list(map(str, command)), env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        kill_once_finished(process, "killed", 6)
    done = {row["id"] for row in db_of("killed").query("select id from traces where status != 'pending'")}
    assert 6 <= len(done) < 24
    stored = len(_calls("killed"))
    with ScriptedTeacher(sensible) as teacher:
        assert _run(teacher, "finisher", "--reuse", "killed", source=source).exit_code in (0, 1)
        asked = len(teacher.requests)
    calls = _calls("finisher")
    reused = [c for c in calls if c["reused_run"]]
    assert {c["trace_id"] for c in reused} <= done  # only what the killed run had finished
    assert len(reused) == stored and asked == len(calls) - stored
    rows = "select id, status, pruned_response from traces order by id"
    killed = {row["id"]: row for row in db_of("killed").query(rows)}
    for row in db_of("finisher").query(rows):
        if row["id"] in done:
            assert row == killed[row["id"]]


def test_bad_reuse_sources_are_refused_in_one_line(tmp_path):
    with ScriptedTeacher(sensible) as teacher:
        missing = _run(teacher, "x", "--reuse", "nowhere")
        assert missing.exit_code == 2 and one_line_error(missing.output), missing.output
        assert _run(teacher, "self", "--limit", "1").exit_code in (0, 1)
        itself = _run(teacher, "self", "--overwrite", "--reuse", "self")
        assert itself.exit_code == 2 and "cannot reuse its own" in itself.output, itself.output


def test_stats_cost_and_transcript_count_reused_calls_apart():
    with ScriptedTeacher(sensible) as teacher:
        _run(teacher, "paid", "--teacher-price", "1,2")
    with ScriptedTeacher(sensible) as teacher:
        _run(teacher, "half", "--teacher-price", "1,2", "--reuse", "paid", "--set", "max_retries=1")
    paid = json.loads(drp("stats", "paid", "--json").output)
    half = json.loads(drp("stats", "half", "--json").output)
    assert paid["teacher_reused_calls"] == 0 and paid["cost"]["saved"] == 0.0 and paid["cost"]["total"] > 0
    # max_retries changes no prompt: every reply is reused, nothing is spent, and what was saved is the first cost
    assert half["teacher_llm_calls"] == 0 and half["cost"]["total"] == 0
    assert half["teacher_reused_calls"] == paid["teacher_llm_calls"] > 0
    assert half["cost"]["saved"] == pytest.approx(paid["cost"]["total"])
    assert half["teacher_reused_input_tokens"] == sum(
        row["teacher_input_tokens"] for row in db_of("paid").query("select teacher_input_tokens from traces")
    )
    text = drp("stats", "half").output
    assert "reused from other runs (--reuse): " in text and "saved by reuse" in text, text
    trace = next(
        iter(db_of("half").query("select trace_id, reused_trace, reused_seq from calls where reused_run is not null"))
    )
    shown = drp("logs", "show", "half", trace["trace_id"]).output
    assert f"reused from run paid, trace {trace['reused_trace']} call #{trace['reused_seq']}" in shown
    from test_report import embedded  # the report's transcript carries where each reused call came from

    assert drp("report", "half").exit_code == 0
    _, blocks = embedded((run_dir("half") / "report.html").read_text())
    llm_calls = [call for block in blocks.values() for call in block["calls"] if call["llm"]]
    assert llm_calls and all(call["reused_run"] == "paid" and call["reused_seq"] for call in llm_calls)


def test_the_estimate_knows_what_a_reuse_saves(policy_dir):
    import re

    with ScriptedTeacher(sensible) as teacher:
        _run(teacher, "base", policy_dir=policy_dir)
    _edit(policy_dir / "mine" / "pruner.yaml", "system: |", "system: |\n  Be brief.")
    with ScriptedTeacher(sensible) as teacher:
        plain = _run(
            teacher, "est", "--estimate", "--estimate-sample", "8", "--teacher-price", "1,2", policy_dir=policy_dir
        )
        asked_plain = len(teacher.requests)
    with ScriptedTeacher(sensible) as teacher:
        reusing = _run(
            teacher,
            "est",
            "--estimate",
            "--estimate-sample",
            "8",
            "--teacher-price",
            "1,2",
            "--reuse",
            "base",
            policy_dir=policy_dir,
        )
        asked = [agent_of(r) for r in teacher.requests]
    assert plain.exit_code == reusing.exit_code == 0, reusing.output
    assert "reuse:" not in plain.output
    assert set(asked) == {"pruner"} and len(asked) < asked_plain  # the sample itself reused what it could
    found = re.search(
        r"reuse: (\d+) of the sample's (\d+) teacher calls \((\d+)%\) answered from stored replies; "
        r"saves ([\d,]+) .*input and ([\d,]+) .*output tokens, \$[\d.]+ not spent",
        reusing.output,
    )
    assert found, reusing.output
    reused, total = int(found.group(1)), int(found.group(2))
    assert total == asked_plain and reused == asked_plain - len(asked)

    def spent(text: str) -> float:
        return float(re.search(r"teacher input tokens\s+([\d,]+)", text).group(1).replace(",", ""))

    saved = float(found.group(4).replace(",", ""))
    assert spent(reusing.output) + saved == pytest.approx(spent(plain.output), rel=0.01)


@pytest.mark.slow  # three runs of the benchmark, in its own process
def test_the_reuse_benchmark_asks_only_what_changed(tmp_path):
    import re
    import subprocess
    import sys

    from helpers import REPO

    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "reuse_share.py"), "--traces", "12"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"segmenter: 0 of \d+ asked again", out) and re.search(r"classifier: 0 of \d+ asked again", out)
    asked, total = map(int, re.search(r"pruner: (\d+) of (\d+) asked again", out).groups())
    assert asked == total > 0
    assert "outside the target (not the pruner's, not after the pruner of a changed trace): 0" in out
    assert re.search(r"same policy, --reuse of the first run: 0 new calls .* byte-identical: True", out), out


def test_worker_processes_reuse_too():
    with ScriptedTeacher(sensible) as teacher:
        _run(teacher, "one")
    with ScriptedTeacher(sensible) as teacher:
        assert _run(teacher, "forked", "--reuse", "one", "--workers", "2").exit_code in (0, 1)
        assert teacher.requests == []
    assert (run_dir("forked") / "pruned.jsonl").read_bytes() == (run_dir("one") / "pruned.jsonl").read_bytes()


def test_a_run_made_before_replies_were_keyed_is_refused_in_one_line():
    import sqlite3

    with ScriptedTeacher(sensible) as teacher:
        _run(teacher, "older", "--limit", "1")
    conn = sqlite3.connect(run_dir("older") / "drp.db")
    with conn:
        conn.execute("drop index calls_reuse_key")
        conn.execute("alter table calls drop column reuse_key")
    conn.close()
    with ScriptedTeacher(sensible) as teacher:
        refused = _run(teacher, "newer", "--reuse", "older")
    assert refused.exit_code == 2 and one_line_error(refused.output), refused.output
    assert "before teacher replies were keyed" in refused.output and not run_dir("newer").exists()
