"""`drp stats` counts the time of a session that was killed (issue 8, part 6): a run's wall time is kept up
to date as each trace finishes, so traces/s is the real rate, not finished traces over the last session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from helpers import db_of, drp, drp_within, example_records, write_jsonl

from drp.paths import run_dir
from drp.testing.scripted_teacher import ScriptedTeacher
from drp.testing.skill_aware_responder import sensible


def finished(run_id: str) -> int:
    try:
        return db_of(run_id).execute("select count(*) from traces where status != 'pending'").fetchone()[0]
    except Exception:  # not created yet
        return 0


def test_stats_counts_the_time_a_killed_session_spent(tmp_path):
    records = [{**r, "id": f"{r['id']}-{copy}"} for copy in range(3) for r in example_records()]
    source = write_jsonl(tmp_path / "many.jsonl", records)
    with ScriptedTeacher(sensible, latency=0.05) as teacher:
        # one trace at a time: the run's wall time can be no less than the sum of its traces' times
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
            "timed",
            "--concurrency",
            "1",
            "--quiet",
        ]
        log = open(tmp_path / "run.log", "wb")
        process = subprocess.Popen(command, env=os.environ.copy(), stdout=log, stderr=log)
        deadline = time.time() + 120
        while finished("timed") < 4 and time.time() < deadline and process.poll() is None:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
        done = finished("timed")
        assert 0 < done < len(records), (process.returncode, (tmp_path / "run.log").read_text()[-2000:])

        killed = json.loads(drp("stats", "timed", "--json").output)
        spent = db_of("timed").execute("select sum(seconds) from traces where seconds is not null").fetchone()[0]
        assert killed["sessions"] == 1 and killed["wall_seconds"] >= spent > 0
        assert killed["traces_per_second"] <= done / spent

        teacher.latency = 0  # it made the killed session's traces take time; the resume need not wait
        resumed = drp_within(300, *command[3:], "--resume")  # in-process: the kill is what needs a process
        assert resumed.exit_code == 0, resumed.output
    final = json.loads(drp("stats", "timed", "--json").output)
    spent = db_of("timed").execute("select sum(seconds) from traces").fetchone()[0]
    assert final["sessions"] == 2 and final["traces"] == len(records)
    assert final["wall_seconds"] >= spent
    assert final["traces_per_second"] <= len(records) / spent
    text = drp("stats", "timed").output
    assert "over 2 session(s)" in text
    sessions = list(db_of("timed").query("select seconds, traces, ended from sessions order by id"))
    assert [s["ended"] for s in sessions] == [0, 1] and sessions[0]["traces"] == done
    assert (run_dir("timed") / "config.json").exists()
