"""The `rules` policy end to end through the CLI: statuses, the run folder, inspection commands, bad input,
limit and resume. No LLM involved."""

from __future__ import annotations

import json

from helpers import EXAMPLES, db_of, drp, example_records, pruned_of, traces_of


def test_rules_run_records_everything(shared_tokenizer):
    result = drp("run", EXAMPLES, "--policy", "rules", "--run-id", "r1", "--quiet")
    assert result.exit_code == 0, result.output
    traces = traces_of("r1")
    assert {t["status"] for t in traces.values()} <= {"accepted", "rejected"}
    assert traces["demo-007"]["reason"].startswith("wrong_original")
    assert traces["demo-008"]["reason"].startswith("incomplete_trace")
    accepted = [t for t in traces.values() if t["status"] == "accepted"]
    assert len(accepted) == 6
    for trace in accepted:
        assert trace["response_tokens_after"] < trace["response_tokens_before"]
        assert trace["pruned_response"].count("</think>") == 1
    # every agent of every pruned trace is recorded like an LLM call would be
    db = db_of("r1")
    nodes = [r["node"] for r in db.query("select node from calls where trace_id = 'demo-001' order by seq")]
    assert nodes == ["prepare", "segmenter", "classifier", "pruner", "verifier"]
    verdict = json.loads(
        next(db.query("select parsed from calls where trace_id='demo-001' and node='verifier'"))["parsed"]
    )
    assert verdict["passed"] is True and verdict["checks"]["same_answer"] is True
    steps = list(db.query("select * from steps where trace_id = 'demo-001' order by step"))
    assert {s["action"] for s in steps} >= {"KEEP", "DELETE"} and all(s["skill"] for s in steps)
    # pruned.jsonl holds exactly the accepted traces, thinking and answer sections intact
    pruned = pruned_of("r1")
    assert sorted(p["id"] for p in pruned) == sorted(t["id"] for t in accepted)
    for record in pruned:
        assert record["response"] == f"{record['thinking']}\n</think>\n\n{record['answer_section']}"
        assert "\\boxed" in record["answer_section"]
    config = json.loads(db_of("r1").conn.execute("select config from runs").fetchone()[0])
    assert config["policy"]["name"] == "rules" and config["tokenizer"] == shared_tokenizer


def test_inspection_commands():
    assert drp("run", EXAMPLES, "--policy", "rules", "--run-id", "r2", "--quiet").exit_code == 0
    listed = drp("logs", "list", "r2", "--status", "rejected", "--ids").output.split()
    assert listed == ["demo-007", "demo-008"]
    shown = drp("logs", "show", "r2", "demo-001", "--json")
    calls = json.loads(shown.output)["calls"]
    assert [c["seq"] for c in calls] == list(range(1, len(calls) + 1))
    assert calls[-1]["node"] == "verifier" and calls[-1]["parsed"]["passed"]
    human = drp("logs", "show", "r2", "demo-001").output
    assert "segmenter" in human and "pruner" in human
    diff = drp("diff", "r2", "demo-001").output
    assert "DELETE" in diff and "KEEP" in diff
    stats = json.loads(drp("stats", "r2", "--json").output)
    for key in (
        "traces",
        "accepted",
        "rejected",
        "failed",
        "response_token_reduction_mean",
        "thinking_token_reduction_mean",
        "teacher_output_tokens_per_trace",
        "traces_per_second",
    ):
        assert key in stats
    assert (stats["traces"], stats["accepted"], stats["rejected"], stats["failed"]) == (8, 6, 2, 0)
    assert 0 < stats["response_token_reduction_mean"] < 1
    assert drp("logs", "show", "r2", "nope").exit_code == 2
    assert drp("stats", "missing-run").exit_code == 2


def test_bad_input_never_crashes_and_loses_nothing(tmp_path):
    good = example_records()[0]
    lines = [
        json.dumps(good).encode(),
        b"{not json",
        json.dumps({"id": "no-question", "response": good["response"]}).encode(),
        json.dumps({"id": "empty-response", "question": "q?", "response": ""}).encode(),
        json.dumps({**good, "id": "no-close", "response": good["response"].replace("</think>", "")}).encode(),
        json.dumps({**good, "id": "huge", "response": ("Hmm, let me think. " * 11000) + good["response"]}).encode(),
        json.dumps(good).encode(),  # duplicate id
        b'{"id": "latin1", "question": "caf\xe9?", "response": "x</think>1"}',
        b"[1, 2, 3]",
        json.dumps({"question": "id-less", "response": good["response"], "gold_answer": good["gold_answer"]}).encode(),
    ]
    source = tmp_path / "bad.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    result = drp("run", source, "--policy", "rules", "--run-id", "bad", "--quiet")
    assert result.exit_code == 1  # some records failed, and the exit status says so
    traces = traces_of("bad")
    assert len(traces) == len(lines)  # one row per input line, none dropped
    reasons = {t["id"]: (t["status"], (t["reason"] or "").split(":")[0]) for t in traces.values()}
    assert reasons[good["id"]] == ("accepted", "verified")
    assert reasons["line-000002"] == ("failed", "invalid_json")
    assert reasons["no-question"] == ("failed", "missing_field")
    assert reasons["empty-response"] == ("failed", "missing_field")
    assert reasons["no-close"] == ("rejected", "incomplete_trace")
    assert reasons["huge"][0] in ("accepted", "rejected")
    assert reasons[f"{good['id']}#line7"] == ("failed", "duplicate_id")
    assert reasons["line-000008"] == ("failed", "invalid_utf8")
    assert reasons["line-000009"] == ("failed", "invalid_record")
    assert reasons["line-000010"][0] == "accepted"
    assert all(t["status"] != "pending" for t in traces.values())


def test_limit_then_resume_finishes_the_rest_once():
    assert drp("run", EXAMPLES, "--policy", "rules", "--run-id", "lim", "--limit", "3", "--quiet").exit_code == 0
    statuses = [t["status"] for t in sorted(traces_of("lim").values(), key=lambda t: t["line"])]
    assert statuses[:3] != ["pending"] * 3 and set(statuses[3:]) == {"pending"}
    first_calls = {r["id"]: r["started_at"] for r in db_of("lim").query("select id, started_at from calls")}
    again = drp("run", EXAMPLES, "--policy", "rules", "--run-id", "lim")
    assert again.exit_code == 2 and "--resume" in again.output
    assert drp("run", EXAMPLES, "--run-id", "lim", "--resume", "--quiet").exit_code == 0  # the run's own policy
    traces = traces_of("lim")
    assert all(t["status"] in ("accepted", "rejected") for t in traces.values())
    later_calls = {r["id"]: r["started_at"] for r in db_of("lim").query("select id, started_at from calls")}
    assert all(later_calls[k] == v for k, v in first_calls.items())  # finished traces were not redone
    prepares = list(db_of("lim").query("select trace_id, count(*) n from calls where node='prepare' group by trace_id"))
    assert len(prepares) == 8 and all(r["n"] == 1 for r in prepares)
    runs = next(db_of("lim").query("select sessions from runs"))
    assert runs["sessions"] == 2


def test_policy_overrides_and_inheritance(tmp_path):
    custom = tmp_path / "policies" / "rules-strict"
    custom.mkdir(parents=True)
    (custom / "policy.yaml").write_text("inherits: rules\ndescription: mine\nanswer_section: keep\n")
    listed = drp("prompts", "list", "--prompts-dir", tmp_path / "policies").output
    assert "rules-strict (inherits rules)" in listed
    result = drp(
        "run",
        EXAMPLES,
        "--policy",
        "rules-strict",
        "--prompts-dir",
        tmp_path / "policies",
        "--run-id",
        "inh",
        "--quiet",
    )
    assert result.exit_code == 0
    for record in pruned_of("inh"):  # answer section kept as written
        original = next(r for r in example_records() if r["id"] == record["id"])
        assert record["answer_section"] == original["response"].split("</think>")[1].strip()
    assert (
        drp(
            "run",
            EXAMPLES,
            "--policy",
            "rules",
            "--set",
            "max_retries=0",
            "--set",
            "verify.shorter=false",
            "--run-id",
            "set",
            "--quiet",
        ).exit_code
        == 0
    )
    config = json.loads(next(db_of("set").query("select config from runs"))["config"])
    assert config["policy"]["verify"]["shorter"] is False
    bad = drp("run", EXAMPLES, "--policy", "no-such-policy", "--run-id", "x")
    assert bad.exit_code == 2 and "unknown policy" in bad.output


def test_llm_policy_without_teacher_names_the_options(monkeypatch):
    monkeypatch.delenv("DRP_TEACHER_URL", raising=False)
    result = drp("run", EXAMPLES, "--policy", "skill-aware", "--run-id", "nt")
    assert result.exit_code == 2
    for option in ("--teacher-url", "drp serve", "--policy rules"):
        assert option in result.output


def test_prompts_show_and_render():
    shown = drp("prompts", "show", "skill-aware", "segmenter").output
    assert "unit" in shown and "hash" in shown
    rendered = drp("prompts", "render", "skill-aware", "segmenter", "--trace", f"{EXAMPLES}:demo-001").output
    assert "[1] " in rendered and "Maya" in rendered
    assert "no prompt" in drp("prompts", "show", "rules", "pruner").output


def test_identity_policy_keeps_everything():
    assert drp("run", EXAMPLES, "--policy", "identity", "--run-id", "idn", "--quiet").exit_code == 0
    for record in pruned_of("idn"):
        original = next(r for r in example_records() if r["id"] == record["id"])
        assert record["thinking"].split() == original["response"].split("</think>")[0].split()


def test_a_datasets_folder_is_a_trace_source(tmp_path):
    import datasets

    records = example_records()
    datasets.Dataset.from_list([{**r, "gold": r.pop("gold_answer")} for r in records]).save_to_disk(
        str(tmp_path / "ds")
    )
    result = drp(
        "run", tmp_path / "ds", "--policy", "rules", "--run-id", "ds", "--field", "gold_answer=gold", "--quiet"
    )
    assert result.exit_code == 0, result.output
    traces = traces_of("ds")
    assert len(traces) == 8 and traces["demo-007"]["reason"].startswith("wrong_original")  # gold was remapped
