"""Several teacher endpoints (`--teacher-url` given more than once, or `--teacher-urls-file`): least-busy routing,
a dead endpoint set aside and its calls moved to the live one, per-endpoint stats; the pool's rules on their own."""

from __future__ import annotations

import json
import threading
import time

import httpx2
import pytest
from helpers import EXAMPLES, db_of, drp, traces_of, write_jsonl

from drp.teacher.endpoints import EndpointPool
from drp.testing.scripted_teacher import ScriptedTeacher, refused_url
from drp.testing.skill_aware_responder import sensible


def _many(tmp_path, copies: int):
    records = [json.loads(line) for line in EXAMPLES.read_text().splitlines()]
    usable = [r for r in records if r["id"] not in ("demo-007", "demo-008")]  # both reach the teacher
    return write_jsonl(tmp_path / "many.jsonl", [{**r, "id": f"{r['id']}-{n}"} for n in range(copies) for r in usable])


def _llm_calls(run_id: str) -> list[dict]:
    return list(db_of(run_id).query("select * from calls where llm order by started_at"))


def test_requests_spread_over_the_endpoints_by_load(tmp_path):
    source = _many(tmp_path, 3)  # 18 traces, 54 teacher calls
    with ScriptedTeacher(sensible, latency=0.15) as a, ScriptedTeacher(sensible, latency=0.15) as b:
        a_url, b_url = a.url, b.url
        result = drp(
            "run",
            source,
            "--teacher-url",
            a_url,
            "--teacher-url",
            b_url,
            "--teacher-model",
            "m",
            "--run-id",
            "two",
            "--concurrency",
            "6",
            "--quiet",
        )
    assert result.exit_code == 0, result.output
    assert all(t["status"] == "accepted" for t in traces_of("two").values())
    assert len(a.requests) + len(b.requests) == 54
    # Least busy first: with 6 traces in flight and equal latency, neither endpoint sits idle.
    assert min(len(a.requests), len(b.requests)) >= 54 * 0.3
    answered = {call["endpoint"] for call in _llm_calls("two")}
    assert answered == {a_url, b_url}
    stats = drp("stats", "two")
    assert f"endpoint {a_url}: {len(a.requests)} calls, 0 errors" in stats.output
    assert f"endpoint {b_url}: {len(b.requests)} calls, 0 errors" in stats.output
    config = json.loads(db_of("two").execute("select config from runs").fetchone()[0])
    assert config["options"]["teacher_urls"] == [a_url, b_url]


def test_a_dead_endpoint_is_set_aside_and_every_trace_still_ends_once(tmp_path):
    source = _many(tmp_path, 5)  # 30 traces
    killed_at = {}
    with ScriptedTeacher(sensible, latency=0.1) as a, ScriptedTeacher(sensible, latency=0.1) as b:
        a_name, b_name = a.url, b.url

        def kill_a_mid_run():
            while len(a.requests) < 12:
                time.sleep(0.01)
            a.kill()
            killed_at["time"] = time.time()

        killer = threading.Thread(target=kill_a_mid_run)
        killer.start()
        result = drp(
            "run",
            source,
            "--teacher-url",
            a_name,
            "--teacher-url",
            b_name,
            "--teacher-model",
            "m",
            "--run-id",
            "dies",
            "--concurrency",
            "4",
            "--quiet",
            "--teacher-max-retries",
            "2",
        )
        killer.join()
    assert result.exit_code == 0, result.output
    traces = traces_of("dies")
    assert len(traces) == 30 and all(t["status"] == "accepted" for t in traces.values())
    db = db_of("dies")
    per_trace = list(db.query("select trace_id, count(*) n from calls where node = 'prepare' group by trace_id"))
    assert len(per_trace) == 30 and all(row["n"] == 1 for row in per_trace)
    calls = _llm_calls("dies")
    assert len(calls) == 90 and all(call["error"] is None for call in calls)
    # Requests cut off when A died were retried on B, and recorded as A's errors.
    moved = [call for call in calls if call["endpoint_errors"]]
    assert moved and all(call["endpoint"] == b_name for call in moved)
    assert {e["endpoint"] for call in moved for e in json.loads(call["endpoint_errors"])} == {a_name}
    # After the death, nothing more was answered by A.
    a_answered = [call for call in calls if call["endpoint"] == a_name]
    assert 0 < len(a_answered) <= len(a.requests)
    assert len(b.requests) == 90 - len(a_answered)
    stats = json.loads(drp("stats", "dies", "--json").output)["endpoints"]
    by_name = {e["endpoint"]: e for e in stats}
    assert by_name[a_name]["calls"] == len(a_answered) and by_name[a_name]["errors"] >= len(moved)
    assert by_name[b_name]["calls"] == 90 - len(a_answered) and by_name[b_name]["errors"] == 0


def test_urls_file_and_refused_endpoint_fail_over_at_once(tmp_path):
    dead = refused_url()
    with ScriptedTeacher(sensible) as teacher:
        live = teacher.url
        urls = write_urls(tmp_path, ["# the first never answers", dead, "", live])
        result = drp(
            "run",
            EXAMPLES,
            "--teacher-urls-file",
            urls,
            "--teacher-model",
            "m",
            "--run-id",
            "file",
            "--limit",
            "2",
            "--quiet",
            "--teacher-max-retries",
            "0",
        )
    assert result.exit_code == 0, result.output
    assert [t["status"] for t in traces_of("file").values() if t["status"] != "pending"] == ["accepted"] * 2
    calls = _llm_calls("file")
    assert all(call["endpoint"] == live for call in calls)
    refused = [e for call in calls for e in json.loads(call["endpoint_errors"] or "[]")]
    # With no client retries at all, a refused connection still moved to the live endpoint; after three
    # failures the dead one was set aside and no longer tried.
    assert 1 <= len(refused) <= 3 and all(e["endpoint"] == dead and "ConnectError" in e["error"] for e in refused)


def write_urls(tmp_path, lines):
    path = tmp_path / "urls.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_an_empty_urls_file_is_a_clear_error(tmp_path):
    result = drp(
        "run",
        EXAMPLES,
        "--teacher-urls-file",
        write_urls(tmp_path, ["# nothing"]),
        "--teacher-model",
        "m",
        "--run-id",
        "empty",
    )
    assert result.exit_code == 2 and "holds no URL" in result.output


class _Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_pool_sets_a_failing_endpoint_aside_for_its_cooldown_then_tries_it_again():
    clock = _Clock()
    pool = EndpointPool(["http://a:1/v1", "http://b:1/v1"], failures_before_set_aside=3, cooldown=30, clock=clock)
    a, b = pool.endpoints
    b.in_flight = 5
    assert pool.choose() is a  # the least busy, while healthy
    for _ in range(2):
        pool._failed(a, None, "HTTP 503")
    assert pool.choose() is a  # two failures: not yet set aside
    pool._failed(a, None, "HTTP 503")
    assert pool.choose() is b  # three in a row: set aside, though the other is busier
    clock.now += 29
    assert pool.choose() is b
    clock.now += 2
    assert pool.choose() is a  # cool-down over: tried again
    pool._failed(b, None, "HTTP 502", counts=False)  # a 4xx-like failure does not count toward setting aside
    assert b.failures == 0


def test_pool_with_every_endpoint_set_aside_uses_the_one_due_back_first():
    clock = _Clock()
    pool = EndpointPool(["http://a:1/v1", "http://b:1/v1"], failures_before_set_aside=1, cooldown=10, clock=clock)
    a, b = pool.endpoints
    pool._failed(a, None, "x")
    clock.now += 5
    pool._failed(b, None, "x")
    assert pool.choose() is a and pool.choose(exclude=[a]) is b and pool.choose(exclude=[a, b]) is None


def test_endpoint_addresses_keep_their_path_query_and_login():
    pool = EndpointPool(["https://user:p%40ss@gw.example/openai/v1?api-version=2024&key=k"])
    endpoint = pool.endpoints[0]
    url = endpoint.address(httpx2.URL("http://teacher.drp.invalid/v1/chat/completions?x=1"))
    assert str(url) == "https://gw.example/openai/v1/chat/completions?api-version=2024&key=k&x=1"
    assert endpoint.name == "https://***@gw.example/openai/v1?api-version=2024&key=***"
    import base64

    assert base64.b64decode(endpoint.authorization.split()[1]) == b"user:p@ss"


@pytest.mark.parametrize("status, counts", [(429, True), (503, True), (400, False), (404, False)])
def test_which_http_answers_count_against_an_endpoint(status, counts):
    from drp.teacher.endpoints import UNHEALTHY_STATUS

    assert (status in UNHEALTHY_STATUS) is counts
