"""What the skill-aware agents ask a teacher, and what they do with its replies, against a real HTTP server
on loopback that answers from a script: schemas sized for the trace, output budgets, the request deadline,
runaway replies, the answer's computation protected, nothing-to-prune, and the optional LLM judge."""

from __future__ import annotations

import json
import time

from helpers import EXAMPLES, db_of, drp, skill_aware_run, traces_of, write_jsonl

from drp.policy import load_policy
from drp.testing.scripted_teacher import Drip, ScriptedTeacher, Text
from drp.testing.skill_aware_responder import agent_of, needed_in, sensible, steps_in


def run_llm(url: str, run_id: str, *extra: str):
    return drp(*skill_aware_run(url, run_id, "--teacher-max-retries", "0", "--limit", "1", *extra, model="scripted"))


def calls_of(run_id: str, node: str | None = None) -> list[dict]:
    calls = db_of(run_id).query("select * from calls where trace_id = 'demo-001' order by seq")
    return [c for c in calls if node is None or c["node"] == node]


def budget(request: dict) -> int:
    """The request's output cap (langchain-openai sends it as max_completion_tokens)."""
    return request.get("max_completion_tokens", request.get("max_tokens"))


def schema_of(request: dict) -> dict:
    return request["response_format"]["json_schema"]["schema"]


def test_every_reply_is_held_to_a_schema_sized_for_the_trace():
    with ScriptedTeacher(sensible) as teacher:
        assert run_llm(teacher.url, "schemas").exit_code == 0
    units = json.loads(calls_of("schemas", "prepare")[0]["parsed"])["units"]
    by_agent = {agent_of(r): r for r in teacher.requests}
    starts = schema_of(by_agent["segmenter"])["properties"]["starts"]
    assert (starts["items"]["minimum"], starts["items"]["maximum"], starts["maxItems"]) == (1, units, units)
    assert f"There are {units} units here, numbered 1 to {units}" in by_agent["segmenter"]["messages"][1]["content"]
    steps = len(steps_in(by_agent["classifier"]))
    skills = schema_of(by_agent["classifier"])["properties"]["skills"]
    assert skills["minItems"] == skills["maxItems"] == steps
    assert skills["items"]["enum"] == load_policy("skill-aware").taxonomy
    assert f"There are exactly {steps} steps" in by_agent["classifier"]["messages"][1]["content"]
    # steps that compute the answer (or a number it needs) are marked, and deleting them is not expressible
    needed = needed_in(by_agent["pruner"])
    assert needed, "the example trace derives its answer"
    deletable = schema_of(by_agent["pruner"])["properties"]["delete"]["items"]["enum"]
    assert set(deletable) == set(range(1, steps + 1)) - needed
    assert "computes 60 / 6 = 10" in by_agent["pruner"]["messages"][1]["content"]
    # output budgets sized from what the reply must hold, not the agents' caps
    assert budget(by_agent["segmenter"]) == 16 + 4 * units
    assert budget(by_agent["classifier"]) == 16 + 8 * steps
    assert budget(by_agent["pruner"]) < load_policy("skill-aware").agents["pruner"].max_tokens
    assert [c["max_tokens"] for c in calls_of("schemas", "classifier")] == [16 + 8 * steps]


def test_json_mode_sends_the_schema_with_json_object():
    with ScriptedTeacher(sensible) as teacher:
        assert run_llm(teacher.url, "jm", "--structured-output", "json_mode").exit_code == 0
    formats = [r["response_format"] for r in teacher.requests]
    assert all(f["type"] == "json_object" and f["schema"]["type"] == "object" for f in formats)
    assert traces_of("jm")["demo-001"]["status"] == "accepted"


def test_a_dripping_reply_ends_at_the_deadline_and_is_never_resent():
    # A byte every 0.3 s: never silent long enough for a read timeout, never done.
    with ScriptedTeacher(lambda request: Drip(interval=0.3)) as teacher:
        started = time.perf_counter()
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
            "drip",
            "--quiet",
            "--limit",
            "1",
            "--teacher-timeout",
            "1.5",
            "--teacher-max-retries",
            "2",
        )
        elapsed = time.perf_counter() - started
    assert result.exit_code == 1
    trace = traces_of("drip")["demo-001"]
    assert trace["status"] == "failed"
    assert trace["reason"] == "teacher_error: timeout after 1.5s"
    assert len(teacher.requests) == 1  # the client's retries never re-sent it
    assert elapsed < 10


def test_the_default_deadline_is_sized_from_the_request():
    from drp.teacher import TeacherSettings

    settings = TeacherSettings(url="http://x/v1", model="m")
    assert settings.deadline(80) == 76.0 and settings.deadline(4096, prompt_chars=2000) == 899.2
    assert TeacherSettings(url="http://x/v1", model="m", timeout=30).deadline(4096) == 30


def test_a_runaway_reply_is_named_in_the_retry():
    replies = iter([Text('{"starts": [1' + ", 2" * 400, finish_reason="length")])

    def responder(request):
        if agent_of(request) == "segmenter":
            scripted = next(replies, None)
            if scripted is not None:
                return scripted
        return sensible(request)

    with ScriptedTeacher(responder) as teacher:
        assert run_llm(teacher.url, "runaway").exit_code == 0
    first, second = calls_of("runaway", "segmenter")
    assert "the reply repeated" in first["error"] and "until it was cut at max_tokens" in first["error"]
    assert "write each item once" in json.loads(second["messages"])[-1]["content"]
    assert traces_of("runaway")["demo-001"]["status"] == "accepted"


def test_a_rewrite_that_drops_what_its_step_computes_is_sent_back():
    def responder(request):
        if agent_of(request) == "pruner" and "could not be used" not in request["messages"][-1]["content"]:
            last_needed = max(needed_in(request))
            return Text(
                json.dumps({"delete": [], "compress": [{"step": last_needed, "text": "So she fills the bags."}]})
            )
        return sensible(request)

    with ScriptedTeacher(responder) as teacher:
        assert run_llm(teacher.url, "rewrite", "--set", "retry_plan_rules=true").exit_code == 0
        assert run_llm(teacher.url, "rewrite-kept").exit_code == 0
    first = calls_of("rewrite", "pruner")[0]
    assert (
        first["error"].startswith("the rewrite of step")
        and "drops 10 (the step computes 60 / 6 = 10): keep it" in first["error"]
    )
    assert traces_of("rewrite")["demo-001"]["status"] == "accepted"
    # by default the rewrite is left out at once: the step stays as written, and no second call is made
    asked, repaired = calls_of("rewrite-kept", "pruner")
    assert asked["llm"] == 1 and asked["error"] is None and repaired["llm"] == 0
    assert "drops 10" in json.loads(repaired["parsed"])["left_out"][0]
    kept = traces_of("rewrite-kept")["demo-001"]
    assert kept["status"] == "accepted" and "So she fills the bags." not in kept["pruned_thinking"]
    actions = db_of("rewrite-kept").query(
        "select action from steps where trace_id = 'demo-001' and rewritten is not null"
    )
    assert not list(actions)  # nothing rewritten: the needed step kept as written


def test_a_plan_that_breaks_a_rule_is_repaired_not_thrown_away():
    def responder(request):
        if agent_of(request) == "pruner":  # every try deletes the restatements but also merges a deleted step
            plan = json.loads(sensible(request).content)
            first = plan["delete"][0]
            plan["merge"] = [{"first": first, "last": first + 1, "text": "Merged."}]
            return Text(json.dumps(plan))
        return sensible(request)

    with ScriptedTeacher(responder) as teacher:
        assert run_llm(teacher.url, "repair-asked", "--set", "retry_plan_rules=true").exit_code == 0
        assert run_llm(teacher.url, "repair").exit_code == 0
    asked = calls_of("repair-asked", "pruner")
    assert [c["llm"] for c in asked] == [1, 1, 1, 0]  # three tries, then the repair (recorded, no LLM)
    assert all("is both deleted and merged: choose one" in c["error"] for c in asked[:3])
    pruner = calls_of("repair", "pruner")
    assert [c["llm"] for c in pruner] == [1, 0]  # the default: repaired at once, no call spent on the slip
    for run_id, calls in (("repair-asked", asked), ("repair", pruner)):
        repair = json.loads(calls[-1]["parsed"])
        assert repair["left_out"] and "is both deleted and merged" in repair["left_out"][0]
        trace = traces_of(run_id)["demo-001"]
        assert trace["status"] == "accepted" and "Merged." not in trace["pruned_thinking"]
        assert trace["pruned_thinking"] == traces_of("repair")["demo-001"]["pruned_thinking"]


def test_a_one_step_merge_is_read_as_that_steps_rewrite():
    def responder(request):
        if agent_of(request) == "pruner":  # a small teacher's habit: "merge" one step with itself
            plan = json.loads(sensible(request).content)
            step = min(set(range(1, len(steps_in(request)) + 1)) - set(plan["delete"]))
            plan["merge"] = [{"first": step, "last": step, "text": "ONE-STEP MERGE TEXT."}]
            plan["compress"] = [c for c in plan["compress"] if c["step"] != step]
            return Text(json.dumps(plan))
        return sensible(request)

    with ScriptedTeacher(responder) as teacher:
        assert run_llm(teacher.url, "onestep", "--set", "protect_derivation=false").exit_code == 0
    asked, repaired = calls_of("onestep", "pruner")
    assert asked["error"] is None and json.loads(repaired["parsed"])["left_out"] == []
    assert "give the first and the last" in json.loads(json.loads(repaired["messages"])[0]["content"])["last_problem"]
    steps = db_of("onestep").query("select action, rewritten from steps where trace_id = 'demo-001' order by step")
    assert {"action": "COMPRESS", "rewritten": "ONE-STEP MERGE TEXT."} in [dict(s) for s in steps]


def test_a_plan_cannot_delete_every_step_of_the_thinking():
    def responder(request):
        if agent_of(request) == "pruner" and "could not be used" not in request["messages"][-1]["content"]:
            return Text(json.dumps({"delete": [n for n, *_ in steps_in(request)], "compress": []}))
        return sensible(request)

    with ScriptedTeacher(responder) as teacher:
        assert run_llm(teacher.url, "all-deleted", "--set", "protect_derivation=false").exit_code == 0
    pruner_request = next(r for r in teacher.requests if agent_of(r) == "pruner")
    assert schema_of(pruner_request)["properties"]["delete"]["maxItems"] == len(steps_in(pruner_request)) - 1
    first, second = calls_of("all-deleted", "pruner")[:2]
    assert first["error"] == "delete lists every step: keep at least the steps that reach the answer"
    assert second["error"] is None
    assert traces_of("all-deleted")["demo-001"]["status"] == "accepted"


def test_a_thinking_of_a_few_sentences_is_one_step_each_without_asking(tmp_path):
    short = {
        "id": "short",
        "question": "Tom has 3 boxes of 4 pens. How many pens does he have?",
        "gold_answer": "12",
        "response": "Okay, Tom has 3 boxes. Each box holds 4 pens. So 3 times 4 is 12 pens. Let me check: 4 + 4 + 4"
        " is 12. Yes.\n</think>\n\nTom has \\boxed{12} pens.",
    }
    source = write_jsonl(tmp_path / "short.jsonl", [short])
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
            "few",
            "--quiet",
        )
        asked = drp(
            "run",
            source,
            "--policy",
            "skill-aware",
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            "m",
            "--run-id",
            "few-asked",
            "--quiet",
            "--set",
            "units.one_step_each_below=0",
        )
    assert result.exit_code == 0 and asked.exit_code == 0
    few = list(db_of("few").query("select * from calls where trace_id = 'short' order by seq"))
    segmenter = next(c for c in few if c["node"] == "segmenter")
    assert segmenter["llm"] == 0 and "one step each" in segmenter["parsed"]
    units = json.loads(few[0]["parsed"])["units"]
    assert 1 < units < load_policy("skill-aware").units.one_step_each_below
    assert sorted({agent_of(r) for r in teacher.requests[: len(teacher.requests) - 3]}) == ["classifier", "pruner"]
    steps = list(db_of("few").query("select unit_start, unit_end from steps where trace_id = 'short'"))
    assert [(s["unit_start"], s["unit_end"]) for s in steps] == [(n, n) for n in range(1, units + 1)]
    assert traces_of("few")["short"]["status"] != "failed"
    # set to 0, the segmenter is asked as for any trace
    assert [agent_of(r) for r in teacher.requests[-3:]] == ["segmenter", "classifier", "pruner"]


def test_nothing_to_prune_is_its_own_outcome():
    def responder(request):
        if agent_of(request) == "pruner":
            return Text(json.dumps({"delete": [], "compress": []}))
        return sensible(request)

    with ScriptedTeacher(responder) as teacher:
        # the answer section as written: only the thinking could have been shortened
        assert run_llm(teacher.url, "keepall", "--set", "answer_section=keep").exit_code == 0
        # the default shortens the answer section: an already concise thinking still makes a shorter response
        result = run_llm(teacher.url, "concise")
        assert result.exit_code == 0, drp("logs", "list", "concise").output
    trace = traces_of("keepall")["demo-001"]
    assert trace["status"] == "rejected" and trace["reason"].startswith("nothing_to_prune: the teacher kept all")
    assert len(calls_of("keepall", "pruner")) == 1  # not retried: keeping everything is a legitimate verdict
    stats = json.loads(drp("stats", "keepall", "--json").output)
    assert stats["reasons"] == {"nothing_to_prune": 1}
    concise = traces_of("concise")["demo-001"]
    assert concise["status"] == "accepted" and concise["pruned_thinking"] == concise["original_thinking"]
    assert concise["response_tokens_after"] < concise["response_tokens_before"]


def test_the_llm_judge_is_a_recorded_call_whose_verdict_counts():
    verdicts = iter(
        [
            {"derives_answer": False, "problem": "it never computes the 60 cookies left"},
            {"derives_answer": True, "problem": ""},
        ]
    )

    def responder(request):
        if "review a shortened piece of reasoning" in request["messages"][0]["content"]:
            return Text(json.dumps(next(verdicts)))
        return sensible(request)

    with ScriptedTeacher(responder) as teacher:
        assert run_llm(teacher.url, "judge", "--set", "verify.judge=true").exit_code == 0
    trace = traces_of("judge")["demo-001"]
    assert trace["status"] == "accepted" and trace["attempts"] == 2
    judged = calls_of("judge", "judge")
    assert [json.loads(c["parsed"])["derives_answer"] for c in judged] == [False, True]
    assert judged[0]["prompt_name"] == "skill-aware/judge.yaml" and judged[0]["output_tokens"] > 0
    second_prompt = json.loads(calls_of("judge", "pruner")[1]["messages"])[-1]["content"]
    assert "it never computes the 60 cookies left" in second_prompt
    assert json.loads(trace["checks"])["judge"] is True


def test_the_judge_is_off_by_default():
    with ScriptedTeacher(sensible) as teacher:
        assert run_llm(teacher.url, "nojudge").exit_code == 0
    assert not calls_of("nojudge", "judge")
    assert "judge" not in json.loads(traces_of("nojudge")["demo-001"]["checks"])


def test_a_request_past_its_deadline_counts_against_its_endpoint_and_is_not_sent_elsewhere():
    # Two endpoints: the first request of an idle pool goes to the first (which drips); at its deadline it is
    # abandoned, recorded as that endpoint's failure, and not re-sent to the healthy one.
    with ScriptedTeacher(lambda request: Drip(interval=0.3)) as slow, ScriptedTeacher(sensible) as healthy:
        slow_url = slow.url
        result = drp(
            "run",
            EXAMPLES,
            "--policy",
            "skill-aware",
            "--teacher-url",
            slow_url,
            "--teacher-url",
            healthy.url,
            "--teacher-model",
            "m",
            "--run-id",
            "drip2",
            "--quiet",
            "--limit",
            "1",
            "--teacher-timeout",
            "1.5",
            "--teacher-max-retries",
            "2",
        )
    assert result.exit_code == 1
    assert traces_of("drip2")["demo-001"]["reason"] == "teacher_error: timeout after 1.5s"
    assert len(slow.requests) == 1 and not healthy.requests
    call = next(db_of("drip2").query("select * from calls where llm"))
    assert call["endpoint"] == slow_url
    assert json.loads(call["endpoint_errors"]) == [
        {"endpoint": slow_url, "error": "no reply by the request's deadline"}
    ]
