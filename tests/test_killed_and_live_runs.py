"""A killed `drp run --estimate` leaves its scratch run only until the next estimate (a real SIGKILL), and a run
still in progress (a live process holds its lock) is not exported cut short."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time

import pytest
from helpers import DRP, drp_within, example_records, write_jsonl

from drp.estimate import SCRATCH_PREFIX
from drp.scratch import clear_stale, scratch_folder
from drp.testing.scripted_teacher import ScriptedTeacher
from drp.testing.skill_aware_responder import sensible


def test_a_killed_estimate_leaves_nothing_past_the_next_one(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    source = write_jsonl(
        tmp_path / "many.jsonl", [{**r, "id": f"{r['id']}-{k}"} for k in range(4) for r in example_records()]
    )
    with ScriptedTeacher(sensible, latency=0.3) as teacher:
        args = [
            *DRP,
            "run",
            source,
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            "gpt-4o",
            "--run-id",
            "est",
            "--estimate",
            "--estimate-sample",
            "8",
            "--quiet",
        ]
        process = subprocess.Popen(list(map(str, args)), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not teacher.requests and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert teacher.requests and process.poll() is None, "the estimate never reached the teacher"
        process.kill()
        process.wait()
        assert list(scratch.glob(f"{SCRATCH_PREFIX}*")), "a kill leaves the scratch run (what this test is about)"
        # The next estimate, in-process (its temporary folder the same), needs no slow teacher to stay alive.
        teacher.latency = 0
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(tempfile, "tempdir", str(scratch))
            finished = drp_within(300, *args[len(DRP) :])
        assert finished.exit_code == 0, finished.output
    assert not list(scratch.glob(f"{SCRATCH_PREFIX}*"))


def test_a_scratch_folder_in_use_is_never_cleared(tmp_path):
    with scratch_folder("drp-test-", tmp_path) as mine:
        (mine / "work").write_text("in progress")
        assert clear_stale("drp-test-", tmp_path) == []
        assert (mine / "work").exists()
    assert not mine.exists()


def test_export_of_a_run_still_in_progress_says_so(tmp_path):
    """A live `drp run` holds its run's lock: export refuses to cut the dataset short, in one line, and exports
    once the run has ended (here: killed, so the lock is free and the accepted traces so far are the run's)."""
    from helpers import drp, one_line_error

    from drp.paths import run_dir

    source = write_jsonl(
        tmp_path / "many.jsonl", [{**r, "id": f"{r['id']}-{k}"} for k in range(4) for r in example_records()]
    )
    with ScriptedTeacher(sensible, latency=0.3) as teacher:
        process = subprocess.Popen(
            list(
                map(
                    str,
                    [
                        *DRP,
                        "run",
                        source,
                        "--teacher-url",
                        teacher.url,
                        "--teacher-model",
                        "m",
                        "--run-id",
                        "live",
                        "--quiet",
                        "--concurrency",
                        "1",
                    ],
                )
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while (not run_dir("live").exists() or len(teacher.requests) < 2) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert process.poll() is None and run_dir("live").exists()
            result = drp("export", "live", "--out", tmp_path / "ds")
            assert result.exit_code == 2 and one_line_error(result.output), result.output
            assert "still in progress" in result.output and f"process {process.pid}" in result.output
            assert not (tmp_path / "ds").exists()
        finally:
            process.kill()
            process.wait()
    after = drp("export", "live", "--out", tmp_path / "ds")
    assert after.exit_code in (0, 2), after.output
    assert "still in progress" not in after.output
