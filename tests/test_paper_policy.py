"""The `paper` policy follows the paper (two calls at temperature 0, open-ended skills, one fluent path as the
training target, no retries), yet never accepts an unfaithful echo or a path that only asserts its answer;
`paper-verified` adds drp's verification loop. Against a real HTTP server on loopback that answers from a
script."""

from __future__ import annotations

import json

from helpers import EXAMPLES, db_of, drp, pruned_of, traces_of
from paper_responder import bare_assertion, compress, echo, invented_echo, is_echo, paper
from scripted_teacher import ScriptedTeacher, Text


def run_paper(url: str, run_id: str, *extra: str, policy: str = "paper"):
    return drp("run", EXAMPLES, "--policy", policy, "--teacher-url", url, "--teacher-model", "scripted",
               "--run-id", run_id, "--quiet", "--teacher-max-retries", "0", "--limit", "1", *extra)


def calls_of(run_id: str, trace_id: str = "demo-001") -> list[dict]:
    return list(db_of(run_id).query("select * from calls where trace_id = ? order by seq", [trace_id]))


def test_paper_two_calls_and_its_output_format():
    with ScriptedTeacher(paper) as teacher:
        assert run_paper(teacher.url, "paper").exit_code == 0
    trace = traces_of("paper")["demo-001"]
    assert trace["status"] == "accepted" and trace["teacher_calls"] == 2
    assert [c["node"] for c in calls_of("paper")] == ["prepare", "segmenter", "echo_check", "pruner", "verifier"]
    assert [r["temperature"] for r in teacher.requests] == [0.0, 0.0]
    # the training target is the pruned path, closed by the paper's answer line; the R1 answer section is gone
    assert trace["pruned_response"].endswith("</think>\n\nThe answer is 10.")
    assert "Wait, let me double-check" not in trace["pruned_thinking"]
    echo_check = json.loads(calls_of("paper")[2]["parsed"])
    assert echo_check["coverage"] == 1.0 and min(echo_check["faithfulness"]) == 1.0
    assert echo_check["last_skill"] == "clarify answer"
    steps = list(db_of("paper").query("select * from steps where trace_id = 'demo-001' order by step"))
    assert steps[-1]["skill"] == "clarify answer" and steps[0]["skill"] == "arithmetic on the given amounts"
    assert all(s["echo"] and s["text"] for s in steps)  # the echo and the original span it maps to
    checks = json.loads(trace["checks"])
    assert checks["derivation"] is True and checks["echo_coverage"] == 1.0 and checks["actions_agree"] is True
    assert pruned_of("paper")[0]["answer_section"] == "The answer is 10."


def test_paper_never_accepts_an_unfaithful_echo_and_never_retries():
    with ScriptedTeacher(invented_echo) as teacher:
        assert run_paper(teacher.url, "invented").exit_code == 0
    trace = traces_of("invented")["demo-001"]
    assert trace["status"] == "rejected" and trace["reason"].startswith("unfaithful_echo: your steps reproduce only")
    assert len(teacher.requests) == 1  # no retry, no pruning call
    coverage = json.loads(calls_of("invented")[-1]["parsed"])["coverage"]
    assert coverage < 0.3


def test_paper_verified_retries_an_unfaithful_echo_with_the_fix():
    replies = iter([invented_echo])

    def responder(request):
        if is_echo(request):
            return next(replies, echo)(request)
        return compress(request)

    with ScriptedTeacher(responder) as teacher:
        assert run_paper(teacher.url, "pv", policy="paper-verified").exit_code == 0
    assert traces_of("pv")["demo-001"]["status"] == "accepted"
    segmenter = [c for c in calls_of("pv") if c["node"] == "segmenter"]
    assert len(segmenter) == 2 and "copy each step's text exactly" in segmenter[0]["error"]
    assert "copy each step's text exactly" in json.loads(segmenter[1]["messages"])[-1]["content"]


def test_paper_rejects_a_path_that_only_asserts_its_answer():
    def responder(request):
        return echo(request) if is_echo(request) else bare_assertion(request)

    with ScriptedTeacher(responder) as teacher:
        assert run_paper(teacher.url, "bare").exit_code == 0
    trace = traces_of("bare")["demo-001"]
    assert trace["status"] == "rejected" and trace["reason"].startswith("verification_failed: after 1 attempts")
    assert "without the computation that yields it" in trace["reason"]
    verdict = json.loads(calls_of("bare")[-1]["parsed"])
    # the answer is right and the path is shorter: only the derivation check catches it
    assert verdict["checks"]["same_answer"] and not verdict["checks"]["derivation"]
    # every step KEEP while the path says something else: measured for `paper`, not gated
    assert verdict["checks"]["actions_agree"] is False and "actions_agree" in verdict["measured_failures"]
    assert len(teacher.requests) == 2


def test_paper_verified_sends_disagreeing_actions_back():
    def responder(request):
        if is_echo(request):
            return echo(request)
        if "A previous attempt was rejected" in request["messages"][-1]["content"]:
            return compress(request)
        reply = json.loads(compress(request).content)
        reply["actions"] = ["KEEP"] * len(reply["actions"])  # claims to keep the hesitation it dropped
        return Text(json.dumps(reply))

    with ScriptedTeacher(responder) as teacher:
        assert run_paper(teacher.url, "agree", policy="paper-verified").exit_code == 0
    trace = traces_of("agree")["demo-001"]
    assert trace["status"] == "accepted" and trace["attempts"] == 2
    pruner = [c for c in calls_of("agree") if c["node"] == "pruner"]
    feedback = json.loads(pruner[1]["messages"])[-1]["content"]
    assert "is KEEP but only" in feedback and "in the pruned reasoning" in feedback
    assert pruner[1]["temperature"] == 0.7


def test_diff_and_report_show_the_original_the_echo_and_the_real_pruned_path(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich would wrap the column titles at its default 80
    def responder(request):  # an echo that re-words one step, and a path that is not the kept steps joined
        if is_echo(request):
            reply = json.loads(echo(request).content)
            reply["steps"][0]["text"] = reply["steps"][0]["text"].replace("figure out", "work out")
            return Text(json.dumps(reply))
        return compress(request)

    with ScriptedTeacher(responder) as teacher:
        assert run_paper(teacher.url, "shown").exit_code == 0
    output = drp("diff", "shown", "demo-001").output
    assert "echo (re-typed by the teacher)" in output and "work out" in output and "figure out" in output
    assert "original thinking (the trace)" in output and "pruned reasoning (what the student learns)" in output
    assert "echo_coverage" in output  # the recorded measurements head the diff

    from drp.paths import run_dir
    from drp.report.data import trace_detail
    from drp.store import open_run

    detail = trace_detail(open_run(run_dir("shown")), "demo-001")
    assert detail["echoed"] and "figure out" in detail["original_thinking"]
    assert detail["pruned_thinking"] == traces_of("shown")["demo-001"]["pruned_thinking"]
    assert drp("report", "shown", "--out", tmp_path / "r.html").exit_code == 0
    assert "echo (as re-typed by the teacher" in (tmp_path / "r.html").read_text()
