"""`drp run --teacher-mode batch` against a scripted server with the OpenAI Files and Batches endpoints: each graph
stage goes out as one job, results match online mode, expired and partly failed jobs go out again in the next round,
and a killed run resumes the job it already submitted instead of paying for it twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

from helpers import BATCH_MODE, EXAMPLES, db_of, drp, drp_within, pruned_of, skill_aware_run, traces_of

from drp.paths import run_dir
from drp.testing.scripted_batches import Outcome, ScriptedBatchAPI
from drp.testing.scripted_teacher import ScriptedTeacher
from drp.testing.skill_aware_responder import agent_of, sensible

TEACHER = 6  # the example traces that reach the teacher (two end in prepare)


def run_batch(url: str, run_id: str, *extra: str):
    return drp(*skill_aware_run(url, run_id, *BATCH_MODE, *extra))


def _transcript(run_id: str) -> dict:
    """Per trace: each call's node, attempt, messages, reply and parsed result (what `drp logs show` prints)."""
    rows = db_of(run_id).query(
        "select trace_id, node, attempt, messages, raw_output, parsed, error, model from calls order by trace_id, seq"
    )
    found: dict = {}
    for row in rows:
        found.setdefault(row["trace_id"], []).append(
            (
                row["node"],
                row["attempt"],
                row["messages"] if row["node"] not in ("prepare", "verifier") else None,
                row["raw_output"] if row["node"] not in ("prepare", "verifier") else None,
                row["error"],
                row["model"],
            )
        )
    return found


def test_batch_mode_sends_one_job_per_stage_and_matches_online_mode():
    with ScriptedTeacher(sensible) as online:
        assert (
            drp(
                "run", EXAMPLES, "--teacher-url", online.url, "--teacher-model", "m", "--run-id", "online", "--quiet"
            ).exit_code
            == 0
        )
    with ScriptedBatchAPI(sensible) as api:
        result = run_batch(api.url, "batch")
    assert result.exit_code == 0, result.output
    # One job per graph stage, each holding that stage's request of every trace.
    assert [len(job.lines) for job in api.jobs.values()] == [TEACHER] * 3
    assert [{agent_of(line["body"]) for line in job.lines} for job in api.jobs.values()] == [
        {"segmenter"},
        {"classifier"},
        {"pruner"},
    ]
    assert all(
        line["url"] == "/v1/chat/completions" and line["method"] == "POST"
        for job in api.jobs.values()
        for line in job.lines
    )
    assert {job.metadata["drp_run"] for job in api.jobs.values()} == {"batch"}
    # Same statuses, same pruned texts, same transcripts.
    assert {k: t["status"] for k, t in traces_of("batch").items()} == {
        k: t["status"] for k, t in traces_of("online").items()
    }
    assert [(r["id"], r["thinking"], r["response"]) for r in pruned_of("batch")] == [
        (r["id"], r["thinking"], r["response"]) for r in pruned_of("online")
    ]
    assert _transcript("batch") == _transcript("online")
    jobs = list(db_of("batch").query("select * from batch_jobs order by created_at"))
    assert [j["status"] for j in jobs] == ["completed"] * 3 and all(j["batch_id"] and j["input_file_id"] for j in jobs)
    config = json.loads((run_dir("batch") / "config.json").read_text())
    assert config["options"]["teacher_mode"] == "batch"


def test_an_expired_job_and_failed_lines_go_out_again_in_the_next_round():
    first_job = {}

    def outcome(job):
        if job.index == 0:  # the segmenter job: half expire, one line gets a 503
            ids = [line["custom_id"] for line in job.lines]
            first_job.update(expired=set(ids[:3]), failed=ids[3])
            return Outcome("expired", expire=lambda custom_id: custom_id in first_job["expired"], fail={ids[3]: 503})
        return Outcome()

    with ScriptedBatchAPI(sensible, outcome) as api:
        result = run_batch(api.url, "expired")
    assert result.exit_code == 0, result.output
    assert sum(t["status"] == "accepted" for t in traces_of("expired").values()) == TEACHER
    jobs = list(api.jobs.values())
    # The next round holds the unanswered ones again, beside the next stage of the traces that were answered.
    unanswered = first_job["expired"] | {first_job["failed"]}
    second = {line["custom_id"]: agent_of(line["body"]) for line in jobs[1].lines}
    assert unanswered <= set(second) and {second[c] for c in unanswered} == {"segmenter"}
    assert [agent for c, agent in second.items() if c not in unanswered] == ["classifier"] * (TEACHER - len(unanswered))
    assert len(api.answered) == len(set(api.answered))  # nothing answered twice
    stored = [j["status"] for j in db_of("expired").query("select status from batch_jobs order by created_at")]
    assert stored[0] == "expired" and set(stored[1:]) == {"completed"}


def test_a_line_that_cannot_succeed_fails_its_trace_and_others_go_on():
    bad = {}

    def outcome(job):
        if job.index == 0:
            bad["id"] = job.lines[0]["custom_id"]
            return Outcome(fail={bad["id"]: 400})
        return Outcome()

    with ScriptedBatchAPI(sensible, outcome) as api:
        result = run_batch(api.url, "line400")
    assert result.exit_code == 1
    traces = traces_of("line400")
    failed = [t for t in traces.values() if t["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["reason"].startswith("teacher_error: HTTP 400")
    assert sum(t["status"] == "accepted" for t in traces.values()) == TEACHER - 1
    assert bad["id"] not in {line["custom_id"] for job in list(api.jobs.values())[1:] for line in job.lines}


def test_jobs_that_keep_failing_end_their_traces_after_the_last_round():
    with ScriptedBatchAPI(sensible, lambda job: Outcome("failed", errors=["line 1: invalid model"])) as api:
        result = run_batch(api.url, "failing")
    assert result.exit_code == 1
    assert len(api.jobs) == 3  # three rounds, then the requests give up
    for trace in traces_of("failing").values():
        if trace["teacher_calls"]:
            assert trace["status"] == "failed" and "batch: no answer after 3 jobs" in trace["reason"]
    details = [j["detail"] for j in db_of("failing").query("select detail from batch_jobs")]
    assert all("invalid model" in d for d in details)


def test_a_killed_run_resumes_the_job_it_submitted(tmp_path):
    hold = threading.Event()
    with ScriptedBatchAPI(sensible, hold=hold) as api:
        command = [
            sys.executable,
            "-m",
            "drp.cli",
            "run",
            str(EXAMPLES),
            "--policy",
            "skill-aware",
            "--teacher-url",
            api.url,
            "--teacher-model",
            "m",
            "--run-id",
            "killed",
            "--quiet",
            "--teacher-mode",
            "batch",
            "--batch-poll-seconds",
            "0.05",
        ]
        process = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and not (api.jobs and _stored_jobs("killed")):
            time.sleep(0.05)
        while time.time() < deadline and next(iter(api.jobs.values())).polls < 2:
            time.sleep(0.05)  # the run is polling its submitted job
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert len(api.jobs) == 1 and not api.answered
        assert all(t["status"] in ("pending", "rejected") for t in traces_of("killed").values())
        hold.set()  # the job finishes while nobody watches
        resumed = drp_within(300, *command[3:], "--resume")  # in-process: the kill is what needs a process
    assert resumed.exit_code == 0, resumed.stderr
    first = next(iter(api.jobs.values()))
    sent = api.requests_sent()
    assert len(sent) == len(set(sent)) == TEACHER * 3  # the first job's requests were never sent again
    assert [len(job.lines) for job in api.jobs.values()] == [TEACHER] * 3
    assert sum(t["status"] == "accepted" for t in traces_of("killed").values()) == TEACHER
    jobs = list(db_of("killed").query("select batch_id, status from batch_jobs order by created_at"))
    assert jobs[0]["batch_id"] == first.id and [j["status"] for j in jobs] == ["completed"] * 3
    per_trace = list(
        db_of("killed").query("select trace_id, count(*) n from calls where node = 'prepare' group by trace_id")
    )
    assert all(row["n"] == 1 for row in per_trace) and len(per_trace) == 8


def _stored_jobs(run_id: str) -> list:
    try:
        return list(db_of(run_id).query("select * from batch_jobs where batch_id is not null"))
    except Exception:  # noqa: BLE001 - the database or table may not exist yet
        return []


# Dies right after the batch API created a job and before the run stored its id: the worst moment for a kill.
_DIE_BEFORE_STORING_THE_JOB_ID = """
import os, sys
from drp.store import RunStore
stored = RunStore.update_batch_job
def update(self, job_id, **fields):
    if fields.get("status") == "submitted":
        os._exit(9)
    return stored(self, job_id, **fields)
RunStore.update_batch_job = update
from drp.cli import app
sys.exit(app(sys.argv[1:]))
"""


def test_a_job_created_just_before_a_kill_is_found_and_reused(tmp_path):
    script = tmp_path / "die.py"
    script.write_text(_DIE_BEFORE_STORING_THE_JOB_ID)
    with ScriptedBatchAPI(sensible) as api:
        command = [
            sys.executable,
            str(script),
            "run",
            str(EXAMPLES),
            "--policy",
            "skill-aware",
            "--teacher-url",
            api.url,
            "--teacher-model",
            "m",
            "--run-id",
            "cut",
            "--quiet",
            "--teacher-mode",
            "batch",
            "--batch-poll-seconds",
            "0.05",
        ]
        died = subprocess.run(command, env=os.environ.copy(), capture_output=True, text=True, timeout=300)
        assert died.returncode == 9 and len(api.jobs) == 1
        row = next(db_of("cut").query("select * from batch_jobs"))
        assert row["status"] == "submitting" and row["batch_id"] is None
        resumed = drp_within(300, *command[2:], "--resume")  # in-process, so without the scripted death
    assert resumed.exit_code == 0, resumed.stderr
    sent = api.requests_sent()
    assert len(sent) == len(set(sent)) == TEACHER * 3  # adopted through its metadata, not submitted again
    first = next(db_of("cut").query("select * from batch_jobs order by created_at"))
    assert first["batch_id"] == next(iter(api.jobs)) and first["status"] == "completed"
    assert sum(t["status"] == "accepted" for t in traces_of("cut").values()) == TEACHER


def test_the_queue_settles_for_at_most_one_poll_interval(tmp_path):
    """Late sibling requests are waited for 0.2 s before a job goes out, but never longer than a poll: a batch server
    polled every 0.05 s ends its jobs sooner than that wait."""
    from drp.teacher.batch import SETTLE_SECONDS, BatchTransport

    def settle(**options) -> float:
        return BatchTransport(None, tmp_path, "r", **options).settle_seconds

    assert settle() == SETTLE_SECONDS == 0.2 and settle(poll_seconds=30.0) == SETTLE_SECONDS
    assert settle(poll_seconds=0.05) == 0.05 and settle(poll_seconds=0.05, settle_seconds=0.3) == 0.3
