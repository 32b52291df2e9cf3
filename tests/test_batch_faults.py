"""Batch mode against hostile Batch API endpoints (drp/testing/scripted_batches.py, Hostile): bad result lines, result
downloads that fail, polls that 404, drip or report no known state, jobs that never end, result files far too large,
and a watcher or submitter that dies. Each run ends in bounded time with a status and a reason per trace, and a
`--resume` afterwards finishes too. Every run is under a deadline (helpers.drp_within): a hang fails the test. Runs
are in-process, except the one a test kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest
from helpers import BATCH_MODE, DRP, EXAMPLES, db_of, drp_within, skill_aware_run, traces_of

from drp.paths import run_dir
from drp.store import RunStore
from drp.testing.scripted_batches import DRIP, RESET, Gzip, Hostile, Junk, Outcome, ScriptedBatchAPI
from drp.testing.skill_aware_responder import sensible

TEACHER = 6  # the example traces that reach the teacher (two end in prepare)
LIMIT = 120  # seconds any one run may take here (each takes a few)
TERMINAL = {"accepted", "rejected", "failed"}


def run_batch(url: str, run_id: str, *extra: str):
    """`drp run` in batch mode, in-process under a deadline; typer's Result (exit_code, stdout, stderr)."""
    faults = ("--teacher-max-retries", "0", "--batch-call-timeout", "1", "--batch-poll-failures", "3")
    return drp_within(LIMIT, *skill_aware_run(url, run_id, *BATCH_MODE, *faults, *extra))


def resume_finishes(url: str, run_id: str) -> None:
    resumed = run_batch(url, run_id, "--resume")
    assert resumed.exit_code in (0, 1) and "Traceback" not in resumed.stderr, resumed.stderr
    assert {t["status"] for t in traces_of(run_id).values()} <= TERMINAL


def trace_of(run_id: str) -> dict[str, str]:
    """custom_id → the trace that asked it."""
    return {row["custom_id"]: row["trace_id"] for row in db_of(run_id).query("select * from batch_requests")}


def jobs_of(run_id: str) -> list[dict]:
    return list(db_of(run_id).query("select * from batch_jobs order by created_at"))


def test_bad_result_lines_fail_their_own_requests_and_junk_is_ignored():
    treated: dict[str, str] = {}

    def lines(job, records):
        if job.index:
            return records
        cut, no_body, no_status, no_completion, duplicated, missing = records
        treated.update(
            cut=cut["custom_id"],
            no_body=no_body["custom_id"],
            no_status=no_status["custom_id"],
            no_completion=no_completion["custom_id"],
            duplicated=duplicated["custom_id"],
            missing=missing["custom_id"],
        )
        unknown = {**duplicated, "custom_id": "drp-" + "0" * 40}
        return [
            json.dumps(cut)[:150],  # cut short: not JSON, but it names its request
            {**no_body, "response": {"status_code": 200, "request_id": "x"}},
            {**no_status, "response": {**no_status["response"], "status_code": "OK"}},
            {**no_completion, "response": {"status_code": 200, "body": {"object": "list", "data": [1, 2]}}},
            {
                **duplicated,
                "response": {
                    **duplicated["response"],
                    "body": {  # usage that is no token counts: dropped
                        **duplicated["response"]["body"],
                        "usage": {"prompt_tokens": "many", "completion_tokens": -1},
                    },
                },
            },
            {**duplicated, "response": {"status_code": 400, "body": {"error": {"message": "later line"}}}},
            unknown,  # not a request of this job
            "[1, 2, 3]",
            '"a string"',
            "null",
            '{"no": "custom_id"}',
            '{"custom_id": 12}',
            "\x00\x7f garbage {",
        ]

    with ScriptedBatchAPI(sensible, hostile=Hostile(lines=lines)) as api:
        result = run_batch(api.url, "lines")
        assert result.exit_code == 1, result.stderr
        assert "warning: batch job" in result.stderr and "result line(s) ignored" in result.stderr
        traces, owner = traces_of("lines"), trace_of("lines")
        reasons = {name: traces[owner[custom_id]]["reason"] or "" for name, custom_id in treated.items()}
        statuses = {name: traces[owner[custom_id]]["status"] for name, custom_id in treated.items()}
        assert statuses == {
            "cut": "failed",
            "no_body": "failed",
            "no_status": "failed",
            "no_completion": "failed",
            "duplicated": "accepted",
            "missing": "accepted",
        }, reasons
        assert all(
            reasons[name].startswith("teacher_error:") for name in ("cut", "no_body", "no_status", "no_completion")
        )
        assert "not JSON" in reasons["cut"] and "no body" in reasons["no_body"]
        assert "not an HTTP status" in reasons["no_status"] and "not a chat completion" in reasons["no_completion"]
        stored = {row["custom_id"]: row["status_code"] for row in db_of("lines").query("select * from batch_results")}
        assert "drp-" + "0" * 40 not in stored and stored[treated["duplicated"]] == 200  # the first line counts
        assert not {treated[name] for name in ("cut", "no_body", "no_status", "no_completion")} & set(stored)
        first = jobs_of("lines")[0]
        assert first["status"] == "completed" and "8 result line(s) ignored" in first["detail"]
        # The request left without a line went out again in the next job; none of the failed ones did.
        second = {line["custom_id"] for line in list(api.jobs.values())[1].lines}
        assert treated["missing"] in second and treated["cut"] not in second
        resume_finishes(api.url, "lines")


def test_result_downloads_that_fail_are_failed_polls_retried_up_to_a_bound():
    def download(job, file_id, attempt):
        if job.index == 0:
            return RESET  # every time: the job is given up after --batch-poll-failures
        if job.index == 1 and attempt <= 2:
            return 404  # twice, then the file comes
        return None

    with ScriptedBatchAPI(sensible, hostile=Hostile(download=download)) as api:
        result = run_batch(api.url, "downloads")
        assert result.exit_code == 0, result.stderr
        assert sum(t["status"] == "accepted" for t in traces_of("downloads").values()) == TEACHER
        jobs = list(api.jobs.values())
        assert api.downloads[jobs[0].output_file_id] == 3 and api.downloads[jobs[1].output_file_id] == 3
        assert api.cancels == [jobs[0].id]  # given up on: asked to stop, so it is not paid for twice
        stored = jobs_of("downloads")
        assert stored[0]["status"] == "lost" and "3 failed polls in a row" in stored[0]["detail"]
        assert [j["status"] for j in stored[1:]] == ["completed"] * (len(stored) - 1)
        assert {line["custom_id"] for line in jobs[0].lines} == {line["custom_id"] for line in jobs[1].lines}
        resume_finishes(api.url, "downloads")


def test_polls_that_404_drip_or_name_no_state_end_their_jobs():
    hostile = Hostile(poll=lambda job: {0: 404, 1: DRIP, 2: "on_holiday"}.get(job.index))
    with ScriptedBatchAPI(sensible, hostile=hostile) as api:
        started = time.monotonic()
        result = run_batch(api.url, "polls")
        took = time.monotonic() - started
        assert result.exit_code == 1, result.stderr
        assert took < 60  # three rounds given up: at once, after 3 deadlines of 1 s, after 3 polls
        stored = jobs_of("polls")
        assert [j["status"] for j in stored] == ["lost"] * 3
        assert "does not know job" in stored[0]["detail"]
        assert "3 failed polls in a row" in stored[1]["detail"] and "within 1 s" in stored[1]["detail"]
        assert "no state a batch job has" in stored[2]["detail"] and "on_holiday" in stored[2]["detail"]
        for trace in traces_of("polls").values():
            if trace["teacher_calls"]:
                assert trace["status"] == "failed" and "batch: no answer after 3 jobs" in trace["reason"]
                assert "ended lost" in trace["reason"]
        resume_finishes(api.url, "polls")


def test_poll_replies_too_large_or_gzip_bombs_are_failed_polls():
    hostile = Hostile(poll=lambda job: {0: Gzip(20_000_000), 1: Junk(300_000_000)}.get(job.index))
    with ScriptedBatchAPI(sensible, hostile=hostile) as api:
        result = run_batch(api.url, "bombs")
        assert result.exit_code == 0, result.stderr
        stored = jobs_of("bombs")
        assert [j["status"] for j in stored[:2]] == ["lost", "lost"]
        assert "encoded 'gzip', which was not asked for" in stored[0]["detail"]
        assert "a reply longer than" in stored[1]["detail"]
        assert api.junk_sent < 50_000_000  # three polls cut short, not 900 MB read
        assert sum(t["status"] == "accepted" for t in traces_of("bombs").values()) == TEACHER


def test_a_job_that_never_ends_is_cancelled_at_its_deadline_and_a_cancelled_job_goes_out_again():
    hostile = Hostile(poll=lambda job: "in_progress" if job.index == 0 else None)
    outcome = lambda job: Outcome("cancelled", expire=lambda custom_id: True) if job.index == 1 else Outcome()  # noqa: E731
    with ScriptedBatchAPI(sensible, outcome, hostile=hostile) as api:
        result = run_batch(api.url, "endless", "--batch-job-timeout", "1")
        assert result.exit_code == 0, result.stderr
        first = next(iter(api.jobs.values()))
        assert api.cancels == [first.id]
        stored = jobs_of("endless")
        assert [j["status"] for j in stored[:2]] == ["timed_out", "cancelled"]
        assert "past the 1 s a job may take" in stored[0]["detail"]
        assert sum(t["status"] == "accepted" for t in traces_of("endless").values()) == TEACHER
        resume_finishes(api.url, "endless")


def test_result_files_larger_than_their_requests_can_need_are_refused():
    huge: dict[str, str] = {}

    def download(job, file_id, attempt):
        return {0: Gzip(60_000_000), 1: Junk(300_000_000)}.get(job.index)

    def lines(job, records):
        if job.index == 2:  # the third segmenter round: one line far larger than its max_tokens allow
            huge["id"] = records[0]["custom_id"]
            records[0]["response"]["body"]["choices"][0]["message"]["content"] = "x" * 400_000
        return records

    with ScriptedBatchAPI(sensible, hostile=Hostile(lines=lines, download=download)) as api:
        result = run_batch(api.url, "sizes")
        assert result.exit_code == 1, result.stderr
        stored = jobs_of("sizes")
        assert [j["status"] for j in stored[:3]] == ["failed", "failed", "completed"]
        assert all("more than its 6 requests can need" in j["detail"] for j in stored[:2])
        assert api.junk_sent < 30_000_000  # the download stopped at the cap, not at the end of the junk
        traces = traces_of("sizes")
        failed = traces[trace_of("sizes")[huge["id"]]]
        assert failed["status"] == "failed" and "more than its request can need" in failed["reason"]
        assert sum(t["status"] == "accepted" for t in traces.values()) == TEACHER - 1
        error = next(db_of("sizes").query("select error from calls where error like '%can need%'"))["error"]
        assert "400" in error and '"custom_id"' in error and len(error) < 3000  # the transcript keeps the line's head
        assert (run_dir("sizes") / "drp.db").stat().st_size < 5_000_000
        resume_finishes(api.url, "sizes")


def breaking(monkeypatch, name: str) -> None:
    """The run's store fails with a disk error the first time `name` is used (add_batch_job: the second time)."""
    original = getattr(RunStore, name)
    calls = []

    def method(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == (2 if name == "add_batch_job" else 1):
            raise OSError("scripted: disk gone")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(RunStore, name, method)


def test_requests_never_wait_on_a_watcher_or_submitter_that_died():
    with ScriptedBatchAPI(sensible) as api:
        for run_id, piece, said in (
            ("watcher", "save_batch_results", "batch: following job"),
            ("submitter", "add_batch_job", "batch: submitting jobs failed"),
        ):
            with pytest.MonkeyPatch.context() as broken:
                breaking(broken, piece)
                result = run_batch(api.url, run_id)
            assert result.exit_code == 1, result.stderr
            for trace in traces_of(run_id).values():
                if trace["teacher_calls"]:
                    assert trace["status"] == "failed" and said in trace["reason"], trace["reason"]
                    assert "scripted: disk gone" in trace["reason"]
            resume_finishes(api.url, run_id)
        assert jobs_of("watcher")[0]["status"] == "failed"


def test_a_resumed_run_whose_job_the_endpoint_forgot_sends_its_requests_again():
    forgot = threading.Event()
    hostile = Hostile(poll=lambda job: 404 if job.index == 0 and forgot.is_set() else None)
    with ScriptedBatchAPI(sensible, hold=threading.Event(), hostile=hostile) as api:
        command = [
            *DRP,
            "run",
            str(EXAMPLES),
            "--policy",
            "skill-aware",
            "--teacher-url",
            api.url,
            "--teacher-model",
            "m",
            "--run-id",
            "forgot",
            "--quiet",
            "--teacher-mode",
            "batch",
            "--batch-poll-seconds",
            "0.05",
        ]
        process = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + LIMIT
        while time.time() < deadline and not (api.jobs and next(iter(api.jobs.values())).polls >= 2):
            time.sleep(0.05)  # the run is polling its submitted job
        process.send_signal(signal.SIGKILL)
        process.wait()
        forgot.set()
        api.hold.set()
        resumed = drp_within(LIMIT, *command[len(DRP) :], "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    stored = jobs_of("forgot")
    assert stored[0]["status"] == "lost" and "does not know job" in stored[0]["detail"]
    assert sum(t["status"] == "accepted" for t in traces_of("forgot").values()) == TEACHER
