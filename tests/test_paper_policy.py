"""The `paper` policy runs the paper's pipeline (the segmenter sees the thinking only, free-text replies at 2048
output tokens, temperature 0, no retries, nothing filtered, every check recorded); `paper-verified` is the gated
variant with JSON replies and drp's verification loop. Against a real HTTP server on loopback that answers from a
script."""

from __future__ import annotations

import json

from helpers import EXAMPLES, db_of, drp, example_records, pruned_of, traces_of, write_jsonl

from drp.testing.paper_responder import (
    bare_assertion,
    compress,
    echo,
    invented_echo,
    is_echo,
    is_text_echo,
    paper,
    text_compress,
    text_echo,
)
from drp.testing.scripted_teacher import ScriptedTeacher, Text


def run_paper(url: str, run_id: str, *extra: str, policy: str = "paper"):
    return drp(
        "run",
        EXAMPLES,
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
        "1",
        *extra,
    )


def calls_of(run_id: str, trace_id: str = "demo-001") -> list[dict]:
    return list(db_of(run_id).query("select * from calls where trace_id = ? order by seq", [trace_id]))


def test_paper_runs_the_papers_pipeline_in_free_text():
    with ScriptedTeacher(paper) as teacher:
        assert run_paper(teacher.url, "paper").exit_code == 0
    trace = traces_of("paper")["demo-001"]
    assert trace["status"] == "accepted" and trace["teacher_calls"] == 2
    assert [c["node"] for c in calls_of("paper")] == ["prepare", "segmenter", "echo_check", "pruner", "verifier"]
    segment, compress_call = teacher.requests
    # temperature 0, the paper's 2048 output tokens per call, free text (no response_format), no retries
    assert [r["temperature"] for r in teacher.requests] == [0.0, 0.0]
    assert [r.get("max_completion_tokens", r.get("max_tokens")) for r in teacher.requests] == [2048, 2048]
    assert not any("response_format" in r or "tools" in r for r in teacher.requests)
    # the segmenter sees the thinking only: neither the question nor the answer section
    question = example_records()[0]["question"]
    segment_text = json.dumps(segment["messages"])
    assert question not in segment_text and "Problem:" not in segment_text
    assert question in json.dumps(compress_call["messages"])
    # the training target is the pruned path; its closing sentence is the answer section, written once
    assert trace["pruned_response"].endswith("</think>\n\nThe answer is 10.")
    assert trace["pruned_response"].count("The answer is 10") == 1
    assert "Wait, let me double-check" not in trace["pruned_thinking"]
    echo_check = json.loads(calls_of("paper")[2]["parsed"])
    assert echo_check["coverage"] == 1.0 and echo_check["last_skill"] == "clarify answer"
    steps = list(db_of("paper").query("select * from steps where trace_id = 'demo-001' order by step"))
    assert steps[-1]["skill"] == "clarify answer" and steps[0]["skill"] == "arithmetic on the given amounts"
    assert {s["action"] for s in steps} == {"KEEP", "DELETE"}
    kept = [s for s in steps if s["action"] == "KEEP"]
    assert all(s["rewritten"] == s["echo"] for s in kept)  # each step's text as the teacher wrote it after its action
    checks = json.loads(trace["checks"])
    assert checks["original_correct"] is True and checks["echo_coverage"] == 1.0 and checks["derivation"] is True
    assert checks["actions_agree"] is True and checks["actions_complete"] is True and checks["answer_line"] is True
    assert pruned_of("paper")[0]["answer_section"] == "The answer is 10."


def test_paper_records_every_check_and_gates_none(tmp_path):
    """A wrong original, an invented echo, a path that only asserts its answer and a reply that leaves a step
    without an action: the paper filters nothing, so the trace is accepted with every failure on record."""
    wrong_gold = [{**example_records()[0], "gold_answer": "11"}]

    def responder(request):
        if is_text_echo(request):
            return text_echo(
                request,
                [
                    ("restate problem", "We need to find the answer to the question."),
                    ("check", "The result was checked and is correct."),
                    ("clarify answer", "So the answer follows."),
                ],
            )
        blocks = "Step 1 [KEEP]: We need to find the answer.\nStep 2 [SKIP]:"
        return Text(blocks + "\n=== PRUNED REASONING ===\nThe result is 10. The answer is 10.")

    with ScriptedTeacher(responder) as teacher:
        result = drp(
            "run",
            write_jsonl(tmp_path / "t.jsonl", wrong_gold),
            "--policy",
            "paper",
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            "scripted",
            "--run-id",
            "ungated",
            "--quiet",
            "--teacher-max-retries",
            "0",
        )
        assert result.exit_code == 0, result.output
    assert len(teacher.requests) == 2  # sent although its answer is wrong; never retried
    trace = traces_of("ungated")["demo-001"]
    assert trace["status"] == "accepted" and trace["reason"] == "recorded: no check gates this policy"
    checks = json.loads(trace["checks"])
    assert checks["original_correct"] is False and checks["echo_coverage"] < 0.3
    assert checks["derivation"] is False and checks["actions_complete"] is False
    echo_check = json.loads(calls_of("ungated")[2]["parsed"])
    assert "copy every sentence" in echo_check["problem"]  # what a gated policy would have refused
    verdict = json.loads(calls_of("ungated")[-1]["parsed"])
    assert verdict["gated"] == [] and {"derivation", "actions_complete"} <= set(verdict["measured_failures"])
    steps = list(db_of("ungated").query("select * from steps where trace_id = 'demo-001' order by step"))
    assert [s["action"] for s in steps] == ["KEEP", "SKIP", None]  # as the reply said, and the step it left out


def test_paper_fails_a_reply_without_a_path_and_never_retries():
    def responder(request):
        if is_text_echo(request):
            return text_echo(request)
        return Text(text_compress(request).content.split("=== PRUNED REASONING ===")[0])

    with ScriptedTeacher(responder) as teacher:
        assert run_paper(teacher.url, "nopath").exit_code == 1
    trace = traces_of("nopath")["demo-001"]
    assert trace["status"] == "failed" and "no '=== PRUNED REASONING ===' line" in trace["reason"]
    assert len(teacher.requests) == 2
    pruner = [c for c in calls_of("nopath") if c["node"] == "pruner"]
    assert len(pruner) == 1 and "Step 1 [KEEP]" in pruner[0]["raw_output"]  # the raw reply is kept


def test_a_path_without_an_answer_line_stays_whole():
    def responder(request):
        return text_echo(request) if is_text_echo(request) else text_compress(request, closing=False)

    with ScriptedTeacher(responder) as teacher:
        assert run_paper(teacher.url, "open").exit_code == 0
    trace = traces_of("open")["demo-001"]
    assert trace["status"] == "accepted" and json.loads(trace["checks"])["answer_line"] is False
    assert "The answer is" not in trace["pruned_response"]  # the path is the thinking as written; nothing added
    assert trace["pruned_response"].rstrip().endswith("</think>")


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


def test_paper_verified_rejects_a_path_that_only_asserts_its_answer():
    def responder(request):
        return echo(request) if is_echo(request) else bare_assertion(request)

    with ScriptedTeacher(responder) as teacher:
        assert run_paper(teacher.url, "bare", policy="paper-verified").exit_code == 0
    trace = traces_of("bare")["demo-001"]
    assert trace["status"] == "rejected" and trace["reason"].startswith("verification_failed: after 3 attempts")
    assert "without the computation that yields it" in trace["reason"]
    verdict = json.loads(calls_of("bare")[-1]["parsed"])
    assert verdict["checks"]["same_answer"] and not verdict["checks"]["derivation"]
    assert verdict["checks"]["actions_agree"] is False and "actions_agree" not in verdict["measured_failures"]


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
        if is_text_echo(request):
            return Text(text_echo(request).content.replace("figure out", "work out", 1))
        return text_compress(request)

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
