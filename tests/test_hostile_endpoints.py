"""Hostile and unlucky teacher endpoints, online, each a real HTTP server on loopback: credentials never written
in clear, reply bodies capped (decompressed), usage out of range never stored, prices checked, garbage replies
failed over, unreachable endpoints leaving traces pending (and retried on resume), estimates that do not project
from failures, teacher URLs checked before any trace."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
import zlib

import pytest
from helpers import (
    DRP,
    EXAMPLES,
    copies_of_examples,
    db_of,
    drp,
    example_records,
    one_line_error,
    traces_of,
    write_jsonl,
)

from drp.paths import run_dir, work_dir
from drp.testing.scripted_teacher import Drop, Endless, Error, Raw, ScriptedTeacher, Text, refused_url
from drp.testing.skill_aware_responder import sensible

KEY = "sk-hostile-0123456789abcdef"


def run(url, run_id: str, *extra, source=EXAMPLES):
    urls = url if isinstance(url, (list, tuple)) else [url]
    args = [a for u in urls for a in ("--teacher-url", u)]
    return drp(
        "run",
        source,
        "--policy",
        "skill-aware",
        *args,
        "--teacher-model",
        "m",
        "--run-id",
        run_id,
        "--quiet",
        "--teacher-max-retries",
        "0",
        *extra,
    )


def llm_calls(run_id: str) -> list[dict]:
    return list(db_of(run_id).query("select * from calls where llm order by trace_id, seq"))


def everything_stored(run_id: str) -> bytes:
    """Every byte of the run's folder (database, log, config, outputs)."""
    folder = run_dir(run_id)
    return b"".join(path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file())


# ---------------------------------------------------------------- credentials


def test_url_credentials_stay_out_of_the_lock_file_the_refusal_and_the_run(tmp_path):
    gate = threading.Event()

    def held(request):
        gate.wait(60)
        return sensible(request)

    with ScriptedTeacher(held) as teacher:
        url = f"http://drpuser:pw-0123456789@127.0.0.1:{teacher.port}/v1"
        command = [
            *DRP,
            "run",
            EXAMPLES,
            "--policy",
            "skill-aware",
            "--teacher-url",
            url,
            "--teacher-model",
            "m",
            "--run-id",
            "secret",
            "--quiet",
            "--limit",
            "1",
        ]
        owner = subprocess.Popen(
            list(map(str, command)), env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.time() + 120
            while not teacher.requests:
                assert time.time() < deadline and owner.poll() is None, owner.communicate()
                time.sleep(0.05)
            lock = work_dir() / "secret.lock"
            assert stat.S_IMODE(lock.stat().st_mode) == 0o600
            held_by = lock.read_text()
            assert "pw-0123456789" not in held_by and "drpuser" not in held_by and "***@127.0.0.1" in held_by
            refused = drp(*command[3:])  # in-process: the owner is the real process that holds the lock
        finally:
            gate.set()
            out, err = owner.communicate(timeout=120)
    assert owner.returncode == 0, err
    assert refused.exit_code == 2 and one_line_error(refused.stderr), refused.stderr
    assert "in use by process" in refused.stderr and "pw-0123456789" not in refused.stderr
    assert not lock.exists()  # removed when the run ended
    stored = everything_stored("secret")
    assert b"pw-0123456789" not in stored and b"drpuser" not in stored


def test_an_api_key_echoed_by_the_endpoint_is_never_stored_or_printed(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    echo = f"Incorrect API key provided: {KEY}. (sent as Authorization: Bearer {KEY}; also Bearer tok-abcdef123456)"

    def responder(request):
        agent = [m for m in request["messages"] if m["role"] == "system"][0]["content"]
        if "label each step" in agent:  # the classifier's endpoint echoes in a reply that is no completion
            return Raw(f"<html>{echo}</html>", content_type="text/html")
        return Error(401, body={"error": {"message": echo, "type": "invalid_request_error"}})

    with ScriptedTeacher(responder) as teacher:
        assert run(teacher.url, "keyed", "--limit", "1").exit_code == 1
    trace = traces_of("keyed")["demo-001"]
    assert trace["status"] == "failed" and "HTTP 401" in trace["reason"] and "***" in trace["reason"]
    assert KEY.encode() not in everything_stored("keyed") and b"tok-abcdef123456" not in everything_stored("keyed")
    for command in (
        ("logs", "show", "keyed", "demo-001"),
        ("logs", "show", "keyed", "demo-001", "--json"),
        ("logs", "list", "keyed"),
        ("stats", "keyed"),
    ):
        shown = drp(*command).output
        assert KEY not in shown and "tok-abcdef123456" not in shown, command
    report = drp("report", "keyed")
    assert report.exit_code == 0, report.output
    assert KEY not in (run_dir("keyed") / "report.html").read_text()


def test_an_html_reply_echoing_the_key_keeps_a_scrubbed_transcript(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with ScriptedTeacher(lambda request: Raw(f"<html>your key {KEY} is fine</html>", content_type="text/html")) as t:
        assert run(t.url, "html", "--limit", "1").exit_code == 1
    call = llm_calls("html")[0]
    assert "not JSON (an HTML page)" in call["error"] and call["raw_output"] == "<html>your key *** is fine</html>"
    assert KEY.encode() not in everything_stored("html")


# ---------------------------------------------------------------- reply size


def _bomb(encoding: str, megabytes: int = 64) -> bytes:
    """A tiny body that inflates to `megabytes` of spaces (a valid JSON prefix, then more spaces for ever)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, {"gzip": 31, "deflate": 15}[encoding])
    block = b" " * (1 << 20)
    packed = [packer.compress(b'{"choices": [{"message": {"role": "assistant", "content": "')]
    packed += [packer.compress(block) for _ in range(megabytes)]
    return b"".join(packed) + packer.flush()


@pytest.mark.parametrize("kind", ["huge", "gzip", "deflate", "endless"])
def test_a_reply_past_what_the_request_can_need_is_cut_off_and_fails_the_call(kind):
    if kind == "huge":
        reply = Text("x" * 40_000_000)
    elif kind == "endless":
        reply = Endless()
    else:
        reply = Raw(_bomb(kind), headers={"Content-Encoding": kind})
    started = time.perf_counter()
    with ScriptedTeacher(lambda request: reply) as teacher:
        result = run(teacher.url, "big", "--limit", "1", "--teacher-timeout", "60")
    assert result.exit_code == 1, result.output
    assert time.perf_counter() - started < 30  # the cap stopped it, not the deadline
    trace = traces_of("big")["demo-001"]
    assert trace["status"] == "failed" and "reply too large" in trace["reason"], trace["reason"]
    call = llm_calls("big")[0]
    assert call["input_tokens"] is None and 0 < len(call["raw_output"]) <= 2000
    assert (run_dir("big") / "drp.db").stat().st_size < 2_000_000
    assert json.loads(call["endpoint_errors"])[0]["error"].startswith("reply too large")


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_reply_within_its_cap_is_read_whole(encoding):
    # The body is decoded once, bounded, by the endpoint pool: what it hands on must not claim to be compressed.
    box: dict = {}

    def compressed(request):
        body = json.dumps(box["teacher"]._completion(request, sensible(request))).encode()
        packer = zlib.compressobj(6, zlib.DEFLATED, {"gzip": 31, "deflate": 15}[encoding])
        return Raw(packer.compress(body) + packer.flush(), headers={"Content-Encoding": encoding})

    with ScriptedTeacher(lambda request: None) as teacher:
        box["teacher"], teacher.responder = teacher, compressed
        result = run(teacher.url, f"packed-{encoding}", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert traces_of(f"packed-{encoding}")["demo-001"]["status"] == "accepted"


# ---------------------------------------------------------------- usage


def _with_usage(teacher_box: dict, usage):
    def responder(request):
        body = teacher_box["teacher"]._completion(request, sensible(request))
        body["usage"] = usage
        return Raw(json.dumps(body))

    return responder


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -5, "completion_tokens": 12, "total_tokens": 7},
        {"prompt_tokens": 2**62, "completion_tokens": 2**62, "total_tokens": 2**63},
        {"prompt_tokens": "many", "completion_tokens": 3.5},
        {"prompt_tokens": 40, "completion_tokens": 10**8, "total_tokens": 10**8 + 40},  # far past max_tokens
        [1, 2],
    ],
)
def test_usage_out_of_range_is_missing_never_stored(usage):
    box: dict = {}
    with ScriptedTeacher(lambda request: None) as teacher:
        box["teacher"], teacher.responder = teacher, _with_usage(box, usage)
        result = run(teacher.url, "usage", "--limit", "2", "--teacher-price", "1,2")
    assert result.exit_code == 0, result.output
    assert all(t["status"] == "accepted" for t in traces_of("usage").values() if t["status"] != "pending")
    calls = llm_calls("usage")
    assert calls and all(
        c["input_tokens"] is None and c["output_tokens"] is None and c["usage"] == "missing" for c in calls
    )
    stats = json.loads(drp("stats", "usage", "--json").output)
    assert stats["cost"]["total"] is None and stats["teacher_calls_without_usage"] == len(calls)


def test_stats_and_report_survive_absurd_token_counts_already_stored():
    with ScriptedTeacher(sensible) as teacher:
        assert run(teacher.url, "stored", "--limit", "3", "--teacher-price", "1,2").exit_code == 0
    db = db_of("stored")
    db.execute(
        "update traces set teacher_input_tokens = 9223372036854775807, teacher_output_tokens = -4 "
        "where status = 'accepted'"
    )
    db.execute("update calls set input_tokens = 9223372036854775807 where llm")
    db.execute("update calls set output_tokens = 'lots' where node = 'classifier'")
    db.conn.commit()
    stats = drp("stats", "stored", "--json")
    assert stats.exit_code == 0, stats.output
    figures = json.loads(stats.output)
    assert figures["cost"]["total"] is None and figures["teacher_input_tokens_per_trace"] is None
    assert drp("stats", "stored").exit_code == 0
    report = drp("report", "stored")
    assert report.exit_code == 0, report.output


# ---------------------------------------------------------------- prices


@pytest.mark.parametrize("price", ["nan,1", "1,inf", "-1,2", "1,-0.5", "NaN,NaN"])
def test_prices_that_are_not_finite_non_negative_numbers_are_refused(price):
    with ScriptedTeacher(sensible) as teacher:
        result = run(teacher.url, "priced", "--limit", "1", "--teacher-price", price)
        assert not teacher.requests
    assert result.exit_code == 2 and one_line_error(result.output), result.output
    assert "--teacher-price" in result.output and not run_dir("priced").exists()
    refused = drp("stats", "nothing", "--teacher-price", price)
    assert refused.exit_code == 2 and one_line_error(refused.output)


@pytest.mark.parametrize(
    "entry",
    [
        "{input: .nan, output: 1}",
        "{input: 1, output: .inf}",
        "{input: -3, output: 1}",
        "{input: 1, output: 2, batch_discount: 3}",
        "{input: 1, output: 2, batch_discount: -0.1}",
    ],
)
def test_a_price_table_with_impossible_prices_is_refused(tmp_path, entry):
    table = tmp_path / "prices.yaml"
    table.write_text(f"models:\n  odd: {entry}\n")
    result = run("http://127.0.0.1:9/v1", "table", "--teacher-price", "odd", "--prices-file", table)
    assert result.exit_code == 2 and one_line_error(result.output) and "odd" in result.output, result.output


def test_a_stored_nan_price_shows_as_no_price_and_strict_json():
    with ScriptedTeacher(sensible) as teacher:
        assert run(teacher.url, "pricey", "--limit", "1", "--teacher-price", "1,2").exit_code == 0
    config_path = run_dir("pricey") / "config.json"
    config = json.loads(config_path.read_text())
    config["price"] = {"input": float("nan"), "output": 1.0, "currency": "USD", "batch_discount": 3.0, "name": None}
    config_path.write_text(json.dumps(config))
    db = db_of("pricey")
    db.execute("update runs set config = ?", [json.dumps(config)])
    db.conn.commit()
    stats = drp("stats", "pricey", "--json")
    figures = json.loads(stats.output, parse_constant=lambda name: pytest.fail(f"{name} in strict JSON"))
    assert figures["cost"]["total"] is None
    assert "nan" not in drp("stats", "pricey").output.lower()


# ---------------------------------------------------------------- failover on garbage

GARBAGE = {
    "html": Raw("<!DOCTYPE html><html><body>Gateway says hello</body></html>", content_type="text/html"),
    "text": Raw("all good, trust me", content_type="text/plain"),
    "list": Raw("[1, 2, 3]"),
    "no-choices": Raw('{"choices": []}'),
    "no-message": Raw('{"choices": [{"index": 0, "finish_reason": "stop"}]}'),
    "content-not-text": Raw('{"choices": [{"message": {"role": "assistant", "content": {"a": 1}}}]}'),
    "content-number": Raw('{"choices": [{"message": {"role": "assistant", "content": 42}}]}'),
    "bad-tool-calls": Raw('{"choices": [{"message": {"role": "assistant", "content": null, "tool_calls": 7}}]}'),
    "empty": Raw(""),
    "null": Raw("null"),
    "deep": Raw("[" * 200_000),
    "brotli": Raw(b"\x1b\x00\x00", headers={"Content-Encoding": "br"}),
    "bad-gzip": Raw(b"\x1f\x8b not really gzip", headers={"Content-Encoding": "gzip"}),
}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
def test_an_endpoint_answering_garbage_counts_failures_and_the_request_goes_elsewhere(kind):
    with ScriptedTeacher(lambda request: GARBAGE[kind]) as bad, ScriptedTeacher(sensible, latency=0.05) as good:
        bad_url, good_url = bad.url, good.url
        result = run([bad_url, good_url], "garbage", "--limit", "2", "--concurrency", "2")
    assert result.exit_code == 0, result.output
    assert all(t["status"] == "accepted" for t in traces_of("garbage").values() if t["status"] != "pending")
    calls = llm_calls("garbage")
    assert calls and all(c["endpoint"] == good_url and c["error"] is None for c in calls)
    assert bad.requests, "the garbage endpoint was tried"
    by_name = {e["endpoint"]: e for e in json.loads(drp("stats", "garbage", "--json").output)["endpoints"]}
    assert by_name[bad_url]["calls"] == 0 and by_name[bad_url]["errors"] == len(bad.requests)


@pytest.mark.parametrize("kind", ["list", "no-message", "content-not-text"])
def test_garbage_from_the_only_endpoint_is_a_teacher_error_not_an_internal_one(kind):
    with ScriptedTeacher(lambda request: GARBAGE[kind]) as teacher:
        assert run(teacher.url, "only", "--limit", "1").exit_code == 1
    reason = traces_of("only")["demo-001"]["reason"]
    assert reason.startswith("teacher_error: reply is not a chat completion"), reason


# ---------------------------------------------------------------- unreachable endpoints, retries on resume


def test_a_dead_endpoint_stops_the_run_early_leaving_traces_pending_then_resume_finishes(tmp_path):
    source = copies_of_examples(tmp_path / "many.jsonl", 4)  # 32 traces
    with ScriptedTeacher(lambda request: Drop()) as dropping:
        stopped = run(dropping.url, "dead", "--concurrency", "2", "--teacher-max-retries", "1", source=source)
        dropped = len(dropping.requests)
    assert stopped.exit_code == 3 and one_line_error(stopped.output), stopped.output
    assert "every teacher endpoint is down" in stopped.output and "--resume" in stopped.output
    assert dropped <= 12  # stopped after a handful of failures, not 24 traces × 2 tries
    assert {t["status"] for t in traces_of("dead").values()} == {"pending"}
    with ScriptedTeacher(sensible) as teacher:
        resumed = run(teacher.url, "dead", "--resume", source=source)
    assert resumed.exit_code == 0, resumed.output
    traces = traces_of("dead").values()
    assert all(t["status"] != "pending" and not (t["reason"] or "").startswith("teacher_error") for t in traces)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_refused_endpoint_leaves_every_trace_pending(workers):
    result = run(refused_url(), "refused", "--limit", "3", "--workers", workers)
    assert result.exit_code == 3 and one_line_error(result.output), result.output
    assert "could not reach any teacher endpoint" in result.output or "could be reached for 3 traces" in result.output
    assert "left pending" in result.output
    assert [t["status"] for t in traces_of("refused").values()][:3] == ["pending"] * 3


def test_traces_failed_on_teacher_errors_are_retried_on_resume_unless_asked_not_to():
    with ScriptedTeacher(lambda request: Error(400, body={"error": {"message": "model overloaded"}})) as broken:
        assert run(broken.url, "retry", "--limit", "2").exit_code == 1
    assert [t["status"] for t in traces_of("retry").values()][:2] == ["failed", "failed"]
    with ScriptedTeacher(sensible) as teacher:
        kept = run(teacher.url, "retry", "--resume", "--no-retry-failed", "--limit", "2")
        assert kept.exit_code == 1 and not teacher.requests
        assert run(teacher.url, "retry", "--resume", "--limit", "2").exit_code == 0
    assert [t["status"] for t in traces_of("retry").values()][:2] == ["accepted", "accepted"]
    assert db_of("retry").execute("select count(*) from calls where error like 'teacher_error%'").fetchone()[0] == 0


# ---------------------------------------------------------------- estimates


def _reaching_the_teacher(tmp_path):
    """The example traces that all call the teacher (two others end before it, whatever it answers)."""
    records = [r for r in example_records() if r["id"] not in ("demo-007", "demo-008")]
    return write_jsonl(tmp_path / "reaching.jsonl", records)


def test_failed_calls_have_unknown_tokens_and_a_failed_sample_projects_nothing(tmp_path):
    source = _reaching_the_teacher(tmp_path)
    with ScriptedTeacher(lambda request: Error(400, body={"error": {"message": "no such model"}})) as teacher:
        result = run(
            teacher.url, "est", "--estimate", "--estimate-sample", "3", "--teacher-price", "1,2", source=source
        )
        assert run(teacher.url, "tokens", "--limit", "1").exit_code == 1
    assert result.exit_code == 2 and one_line_error(result.output), result.output
    assert "sample failed" in result.output and "no such model" in result.output
    assert "$0" not in result.output
    failed = llm_calls("tokens")[0]
    assert failed["input_tokens"] is None and failed["output_tokens"] is None


def test_a_partly_failed_sample_warns_loudly(tmp_path):
    def responder(request):
        if "Maya" in json.dumps(request["messages"]):  # demo-001's calls fail
            return Error(400, body={"error": {"message": "too long"}})
        return sensible(request)

    with ScriptedTeacher(responder) as teacher:
        result = run(
            teacher.url,
            "est",
            "--estimate",
            "--estimate-sample",
            "6",
            "--teacher-price",
            "1,2",
            source=_reaching_the_teacher(tmp_path),
        )
    assert result.exit_code == 0, result.output
    assert "WARNING: 1 of 6 sample traces failed" in result.output and "too long" in result.output


def test_an_estimate_against_a_dead_endpoint_is_one_line_error(tmp_path):
    result = run(refused_url(), "est", "--estimate", "--estimate-sample", "2", source=_reaching_the_teacher(tmp_path))
    assert result.exit_code == 3 and one_line_error(result.output), result.output
    assert "--estimate sample stopped" in result.output


# ---------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "127.0.0.1:8000/v1",
        "http:///v1",
        "ftp://host/v1",
        "http://host:port/v1",
        "localhost",
        "https://user:pw-0123456789@/v1",
    ],
)
def test_teacher_urls_are_checked_before_any_trace(url):
    result = run(url, "urls", "--limit", "1")
    assert result.exit_code == 2 and one_line_error(result.output), result.output
    assert "teacher URL" in result.output and "pw-0123456789" not in result.output
    assert not run_dir("urls").exists()
