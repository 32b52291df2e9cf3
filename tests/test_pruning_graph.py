"""The LLM graph (skill-aware, paper) against a real OpenAI-compatible server on loopback that answers from a
script: routing, retries with verifier feedback, parse errors, HTTP faults, kill and resume, secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import EXAMPLES, db_of, drp, drp_within, kill_once_finished, pruned_of, traces_of

from drp.paths import run_dir
from drp.testing.scripted_teacher import Error, Hang, ScriptedTeacher, Text, ToolCall, refused_url
from drp.testing.skill_aware_responder import agent_of, answer_losing, label, prune, segment, sensible


def run_llm(teacher_url: str, run_id: str, *extra: str, policy: str = "skill-aware"):
    return drp(
        "run",
        EXAMPLES,
        "--policy",
        policy,
        "--teacher-url",
        teacher_url,
        "--teacher-model",
        "scripted",
        "--run-id",
        run_id,
        "--quiet",
        "--teacher-max-retries",
        "0",
        *extra,
    )


def calls_of(run_id: str, trace_id: str) -> list[dict]:
    return list(db_of(run_id).query("select * from calls where trace_id = ? order by seq", [trace_id]))


def test_happy_path_records_every_call():
    with ScriptedTeacher(sensible) as teacher:
        result = run_llm(teacher.url, "ok", "--concurrency", "4")
    assert result.exit_code == 0, result.output
    traces = traces_of("ok")
    assert sum(t["status"] == "accepted" for t in traces.values()) == 6
    assert traces["demo-007"]["teacher_calls"] == 0  # wrong original: no teacher call spent on it
    assert len(teacher.requests) == 6 * 3
    calls = calls_of("ok", "demo-002")
    assert [c["node"] for c in calls] == ["prepare", "segmenter", "classifier", "pruner", "verifier"]
    assert [c["llm"] for c in calls] == [0, 1, 1, 1, 0] and traces["demo-002"]["teacher_calls"] == 3
    for call in calls[1:4]:
        messages = json.loads(call["messages"])
        assert messages[0]["role"] == "system" and messages[1]["role"] == "user"
        assert call["raw_output"] and json.loads(call["parsed"]) and call["error"] is None
        assert call["model"] == "scripted" and call["input_tokens"] > 0 and call["output_tokens"] > 0
        assert call["prompt_name"].startswith("skill-aware/") and len(call["prompt_hash"]) == 12
        assert call["latency_ms"] > 0
    assert traces["demo-002"]["teacher_output_tokens"] == sum(c["output_tokens"] for c in calls)
    steps = list(db_of("ok").query("select * from steps where trace_id = 'demo-002' order by step"))
    assert steps[0]["unit_start"] == 1 and steps[-1]["unit_end"] == len(steps)
    assert len(pruned_of("ok")) == 6


def test_verifier_feedback_drives_a_successful_retry():
    seen_pruner_prompts = []

    def responder(request):
        agent = agent_of(request)
        if agent == "pruner":
            seen_pruner_prompts.append(request["messages"][-1]["content"])
            first_try = "was rejected" not in request["messages"][-1]["content"]
            return Text(prune(request, delete_everything_after=1 if first_try else None))
        return sensible(request)

    with ScriptedTeacher(responder) as teacher:
        # unprotected, so that the scripted pruner can delete the steps computing the answer
        assert run_llm(teacher.url, "retry", "--limit", "1", "--set", "protect_derivation=false").exit_code == 0
    trace = traces_of("retry")["demo-001"]
    assert trace["status"] == "accepted" and trace["attempts"] == 2
    assert "no longer reaches the final answer 10" in seen_pruner_prompts[1]
    verdicts = [json.loads(c["parsed"]) for c in calls_of("retry", "demo-001") if c["node"] == "verifier"]
    assert [v["passed"] for v in verdicts] == [False, True]
    assert [v["attempt"] for v in verdicts] == [1, 2]


def test_rejected_after_the_last_retry_with_reasons():
    with ScriptedTeacher(answer_losing) as teacher:
        assert (
            run_llm(
                teacher.url, "rej", "--limit", "1", "--set", "max_retries=1", "--set", "protect_derivation=false"
            ).exit_code
            == 0
        )
    trace = traces_of("rej")["demo-001"]
    assert trace["status"] == "rejected" and trace["attempts"] == 2
    assert trace["reason"].startswith("verification_failed: after 2 attempts") and "final answer 10" in trace["reason"]


def test_fallback_to_rules_after_the_last_retry():
    with ScriptedTeacher(answer_losing) as teacher:
        assert (
            run_llm(
                teacher.url,
                "fb",
                "--limit",
                "1",
                "--set",
                "max_retries=0",
                "--set",
                "fallback=rules",
                "--set",
                "protect_derivation=false",
            ).exit_code
            == 0
        )
    trace = traces_of("fb")["demo-001"]
    assert (trace["status"], trace["reason"]) == ("accepted", "fallback_rules")


def test_unparseable_and_out_of_range_replies_are_retried_with_the_exact_fix():
    replies = {"segmenter": iter(["not json at all", json.dumps({"starts": [1, 3, 99]})])}

    def responder(request):
        agent = agent_of(request)
        if agent == "segmenter":
            scripted = next(replies["segmenter"], None)
            if scripted is not None:
                return Text(scripted)
        return sensible(request)

    with ScriptedTeacher(responder) as teacher:
        assert run_llm(teacher.url, "parse", "--limit", "1", "--concurrency", "1").exit_code == 0
    calls = [c for c in calls_of("parse", "demo-001") if c["node"] == "segmenter"]
    units = json.loads(calls_of("parse", "demo-001")[0]["parsed"])["units"]
    assert len(calls) == 3
    assert "no JSON object" in calls[0]["error"]
    assert calls[1]["error"] == f"unit 99 does not exist; the last unit is {units}"
    assert calls[2]["error"] is None
    retry = json.loads(calls[2]["messages"])
    # a fresh question with the fix named, not a conversation that carries the failed reply along
    assert [m["role"] for m in retry] == ["system", "user"]
    assert f"unit 99 does not exist; the last unit is {units}" in retry[-1]["content"]
    assert '"starts": [1, 3, 99]' not in retry[-1]["content"]
    # retries sample: the same question at temperature 0 would get the same bytes back
    segmenter_requests = [r for r in teacher.requests if agent_of(r) == "segmenter"]
    assert [r["temperature"] for r in segmenter_requests] == [0.0, 0.7, 0.7]
    assert [c["temperature"] for c in calls] == [0.0, 0.7, 0.7]
    assert traces_of("parse")["demo-001"]["status"] == "accepted"


def test_a_teacher_that_never_parses_fails_the_trace_not_the_run():
    with ScriptedTeacher(lambda request: Text("I am not able to do that.")) as teacher:
        result = run_llm(teacher.url, "junk", "--limit", "2")
    assert result.exit_code == 1
    for trace in traces_of("junk").values():
        if trace["status"] != "pending":
            assert trace["status"] == "failed" and trace["reason"].startswith("segmenter_unusable")
    assert len(calls_of("junk", "demo-001")) == 1 + 3  # prepare + first try + 2 parse retries


@pytest.mark.parametrize(
    "reply, reason",
    [
        (Error(500, {"error": {"message": "boom"}}), "teacher_error: HTTP 500"),
        (Error(503), "teacher_error: HTTP 503"),
        (Hang(2.0), "teacher_error: timeout after 0.3s"),
    ],
)
def test_http_faults_end_as_failed_traces(reply, reason):
    with ScriptedTeacher(lambda request: reply) as teacher:
        result = run_llm(teacher.url, "fault", "--limit", "2", "--teacher-timeout", "0.3")
    assert result.exit_code == 1
    traces = traces_of("fault")
    assert traces["demo-001"]["status"] == "failed" and traces["demo-001"]["reason"].startswith(reason)
    assert traces["demo-002"]["status"] == "failed"  # the run went on to the next trace
    call = calls_of("fault", "demo-001")[-1]
    assert call["node"] == "segmenter" and call["error"].startswith("teacher_error")


def test_connection_refused_leaves_the_trace_pending():
    # No endpoint reached: the teacher's fault, not the trace's (tests/test_hostile_endpoints.py has the rest).
    result = run_llm(refused_url(), "refused", "--limit", "1")
    assert result.exit_code == 3 and "connection failed" in result.output
    assert traces_of("refused")["demo-001"]["status"] == "pending"


def test_rate_limit_with_retry_after_is_retried_by_the_client():
    state = {"limited": 0}

    def responder(request):
        if state["limited"] < 2:
            state["limited"] += 1
            return Error(429, headers={"Retry-After": "0.2"})
        return sensible(request)

    with ScriptedTeacher(responder) as teacher:
        result = drp(
            "run",
            EXAMPLES,
            "--policy",
            "skill-aware",
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            "m",
            "--run-id",
            "429",
            "--limit",
            "1",
            "--quiet",
            "--teacher-max-retries",
            "3",
        )
    assert result.exit_code == 0
    assert traces_of("429")["demo-001"]["status"] == "accepted"
    assert len(teacher.requests) == 3 + 2


def test_function_calling_method():
    def responder(request):
        assert request.get("tools"), "function calling sends a tool"
        name = request["tools"][0]["function"]["name"]
        content = {"segmenter": segment, "classifier": label, "pruner": prune}[agent_of(request)](request)
        return ToolCall(name, json.loads(content))

    with ScriptedTeacher(responder) as teacher:
        assert run_llm(teacher.url, "tools", "--limit", "2", "--structured-output", "function_calling").exit_code == 0
    assert traces_of("tools")["demo-001"]["status"] == "accepted"


def test_api_key_never_lands_on_disk(monkeypatch):
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("MY_TEACHER_KEY", secret)
    with ScriptedTeacher(sensible) as teacher:
        result = run_llm(teacher.url, "secret", "--limit", "2", "--teacher-api-key-env", "MY_TEACHER_KEY")
    assert result.exit_code == 0 and secret not in result.output
    folder = run_dir("secret")
    for path in folder.iterdir():
        assert secret.encode() not in path.read_bytes(), path
    config = json.loads((folder / "config.json").read_text())
    assert config["teacher"]["api_key_env"] == "MY_TEACHER_KEY"


def test_url_credentials_never_land_on_disk_or_console(tmp_path):
    """`https://user:pass@host/v1` and `?api_key=` secrets: masked in config, database, report, logs, errors."""
    user, password, query_secret = "drpuser-7f3a1", "drppass-9c1e2", "drpq-5d2b3"
    secrets = (user, password, query_secret)
    outputs = []
    with ScriptedTeacher(sensible) as teacher:
        port = teacher.url.split(":")[2].split("/")[0]
        with_login = f"http://{user}:{password}@127.0.0.1:{port}/v1"
        # The openai client folds a base URL's query into the path: the server answers 404 and echoes it back,
        # so this run also proves that error messages are scrubbed.
        with_query = f"http://{user}:{password}@127.0.0.1:{port}/v1?api_key={query_secret}&api-version=2024-10-21"
        for run_id, url in (("login", with_login), ("query", with_query)):
            command = [
                sys.executable,
                "-m",
                "drp.cli",
                "run",
                str(EXAMPLES),
                "--policy",
                "skill-aware",
                "--teacher-url",
                url,
                "--teacher-model",
                "m",
                "--run-id",
                run_id,
                "--limit",
                "3",
                "--teacher-max-retries",
                "0",
            ]
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
            outputs += [done.stdout, done.stderr]
            assert done.returncode == (0 if run_id == "login" else 1), done.stderr
        resume = [sys.executable, "-m", "drp.cli", "run", str(EXAMPLES), "--run-id", "query", "--resume"]
        resumed = subprocess.run(resume, capture_output=True, text=True, timeout=300)
        outputs += [resumed.stdout, resumed.stderr]
    assert resumed.returncode == 2 and "pass --teacher-url again" in resumed.stderr
    assert sum(t["status"] == "accepted" for t in traces_of("login").values()) == 3  # the credentials were used
    failed = traces_of("query")["demo-001"]
    assert failed["status"] == "failed" and "404" in failed["reason"] and "api_key=***" in failed["reason"]
    config = json.loads((run_dir("query") / "config.json").read_text())
    assert config["teacher"]["url"] == f"http://***@127.0.0.1:{port}/v1?api_key=***&api-version=2024-10-21"
    assert config["options"]["teacher_urls"] == [config["teacher"]["url"]]
    assert next(db_of("query").query("select teacher_url from runs"))["teacher_url"] == config["teacher"]["url"]
    for run_id in ("login", "query"):
        report = tmp_path / f"{run_id}.html"
        outputs += [
            drp("report", run_id, "--out", report).output,
            report.read_text(),
            drp("logs", "list", run_id).output,
            drp("logs", "show", run_id, "demo-001").output,
            drp("stats", run_id).output,
        ]
        for path in run_dir(run_id).rglob("*"):
            if path.is_file():
                content = path.read_bytes()
                assert not any(secret.encode() in content for secret in secrets), path
    for text in outputs:
        assert not any(secret in text for secret in secrets), text[-2000:]


def test_sigkill_then_resume_finishes_every_trace_exactly_once(tmp_path):
    records = [json.loads(line) for line in EXAMPLES.read_text().splitlines()]
    many = [{**r, "id": f"{r['id']}-{copy}"} for copy in range(4) for r in records]  # 32 traces
    source = tmp_path / "many.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in many))
    with ScriptedTeacher(sensible, latency=0.15) as teacher:
        command = [
            sys.executable,
            "-m",
            "drp.cli",
            "run",
            str(source),
            "--policy",
            "skill-aware",
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
        process = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kill_once_finished(process, "killed", 5)
        before = {r["id"]: r["status"] for r in db_of("killed").query("select id, status from traces")}
        assert 0 < sum(s == "pending" for s in before.values()) < len(many)
        teacher.latency = 0  # it kept the killed run mid-way; the resume, in-process, need not wait
        resumed = drp_within(300, *command[3:], "--resume")
        assert resumed.exit_code == 0, resumed.output
    db = db_of("killed")
    rows = list(db.query("select id, status from traces"))
    assert len(rows) == len(many) and all(r["status"] in ("accepted", "rejected") for r in rows)
    for trace_id, status in before.items():  # finished before the kill: untouched by the resume
        if status != "pending":
            assert next(db.query("select status from traces where id = ?", [trace_id]))["status"] == status
    per_trace = list(db.query("select trace_id, count(*) n from calls where node = 'prepare' group by trace_id"))
    assert len(per_trace) == len(many) and all(r["n"] == 1 for r in per_trace)
    assert (
        db.execute(
            "select count(*) from (select trace_id, seq from calls group by trace_id, seq having count(*) > 1)"
        ).fetchone()[0]
        == 0
    )
    assert len(pruned_of("killed")) == sum(r["status"] == "accepted" for r in rows)


def test_worker_processes_share_the_traces_exactly_once(tmp_path):
    records = [json.loads(line) for line in EXAMPLES.read_text().splitlines()]
    many = [{**r, "id": f"{r['id']}-{copy}"} for copy in range(3) for r in records]  # 24 traces
    source = tmp_path / "many.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in many))
    with ScriptedTeacher(sensible) as teacher:
        result = drp(
            "run",
            source,
            "--policy",
            "skill-aware",
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            "m",
            "--run-id",
            "workers",
            "--workers",
            "2",
            "--concurrency",
            "4",
            "--quiet",
        )
    assert result.exit_code == 0, result.output
    traces = traces_of("workers")
    assert len(traces) == 24 and sum(t["status"] == "accepted" for t in traces.values()) == 18
    assert len(teacher.requests) == 18 * 3  # no trace was processed twice
    per_trace = list(
        db_of("workers").query("select trace_id, count(*) n from calls where node = 'prepare' group by trace_id")
    )
    assert len(per_trace) == 24 and all(r["n"] == 1 for r in per_trace)
    assert len(pruned_of("workers")) == 18


def test_long_traces_are_segmented_in_windows_of_units():
    with ScriptedTeacher(sensible) as teacher:
        assert run_llm(teacher.url, "windows", "--limit", "1", "--set", "units.per_call=4").exit_code == 0
    segmenter_calls = [c for c in calls_of("windows", "demo-001") if c["node"] == "segmenter"]
    units = json.loads(calls_of("windows", "demo-001")[0]["parsed"])["units"]  # the prepare node counted them
    assert len(segmenter_calls) == -(-units // 4) > 1  # one call per window of 4 units
    second = json.loads(segmenter_calls[1]["messages"])[1]["content"]
    assert "[5] " in second and "[1] " not in second and "units 5 to 8 of" in second
    steps = list(
        db_of("windows").query("select unit_start, unit_end from steps where trace_id = 'demo-001' order by step")
    )
    assert [s["unit_start"] for s in steps] == [1] + [
        s["unit_end"] + 1 for s in steps[:-1]
    ]  # contiguous across windows
    assert traces_of("windows")["demo-001"]["status"] == "accepted"
