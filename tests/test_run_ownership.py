"""Who may create, replace or write a run: plain run ids only, only drp runs are ever replaced, one process
owns a run at a time (real concurrent processes), and `--workers` die with the process that owns the run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from helpers import DRP, EXAMPLES, copies_of_examples, db_of, drp, drp_within, one_line_error, pruned_of, traces_of

from drp.paths import run_dir, work_dir
from drp.testing.scripted_teacher import ScriptedTeacher
from drp.testing.skill_aware_responder import sensible


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` and its bytes, less drp's own corner of the runs folder (its lock files)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".drp" not in p.relative_to(root).parts
    }


# ---------------------------------------------------------------- run ids


@pytest.mark.parametrize("bad", [".", "..", "../x", "a/b", "/abs", "", " x", "-x", "x y", "a\tb", "a\\b", "é"])
def test_run_ids_are_plain_names(hermetic_runs, tmp_path, bad, example_run):
    example_run("keep")
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "drp.db").write_text("not mine")  # looks like a run folder to a careless check
    (tmp_path / "notes.txt").write_text("the user's own file")
    bad = str(sentinel) if bad == "/abs" else bad
    before = _tree(tmp_path)

    for extra in ((), ("--overwrite",), ("--resume",)):
        result = drp("run", EXAMPLES, "--policy", "rules", "--run-id", bad, "--quiet", *extra)
        assert result.exit_code == 2 and "invalid run id" in result.output and one_line_error(result.output), (
            result.output
        )
    # Nothing written or deleted anywhere: not the other run, not the runs folder's parent, not the absolute path.
    assert _tree(tmp_path) == before
    assert not (tmp_path / "x").exists() and traces_of("keep")


def test_overwrite_replaces_only_a_drp_run(hermetic_runs):
    hermetic_runs.mkdir(parents=True)
    mine = hermetic_runs / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("months of work")
    other_db = hermetic_runs / "otherdb"
    other_db.mkdir()
    conn = sqlite3.connect(other_db / "drp.db")  # somebody else's SQLite file that happens to be named drp.db
    conn.execute("create table accounts (id int)")
    conn.commit()
    conn.close()
    before = _tree(hermetic_runs)

    for run_id in ("mine", "otherdb"):
        for extra in (("--overwrite",), (), ("--resume",)):
            result = drp("run", EXAMPLES, "--policy", "rules", "--run-id", run_id, "--quiet", *extra)
            assert result.exit_code == 2, result.output
            assert "is not a drp run" in result.output and one_line_error(result.output), result.output
    assert _tree(hermetic_runs) == before

    # A real run is replaced, and an empty folder may become a run.
    assert drp("run", EXAMPLES, "--policy", "rules", "--run-id", "real", "--quiet").exit_code == 0
    assert drp("run", EXAMPLES, "--policy", "identity", "--run-id", "real", "--overwrite", "--quiet").exit_code == 0
    assert db_of("real")["runs"].get("real")["policy"] == "identity"
    (hermetic_runs / "empty").mkdir()
    assert drp("run", EXAMPLES, "--policy", "rules", "--run-id", "empty", "--quiet").exit_code == 0
    # A link to a run is resumed through, never swapped out.
    (hermetic_runs / "linked").symlink_to(hermetic_runs / "real")
    linked = drp("run", EXAMPLES, "--policy", "rules", "--run-id", "linked", "--overwrite", "--quiet")
    assert linked.exit_code == 2 and "is a link" in linked.output and (hermetic_runs / "linked").is_symlink()
    assert drp("run", EXAMPLES, "--run-id", "linked", "--resume", "--quiet").exit_code == 0
    assert db_of("real")["runs"].get("real")["policy"] == "identity"


# ---------------------------------------------------------------- one owner at a time


def _wait_for(condition, timeout: float = 120, what: str = "") -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _done(run_id: str) -> int:
    try:
        return db_of(run_id).execute("select count(*) from traces where status != 'pending'").fetchone()[0]
    except (sqlite3.Error, FileNotFoundError):
        return 0


def _lock_holder(run_id: str) -> str:
    path = work_dir() / f"{run_id}.lock"
    return path.read_text() if path.exists() else ""


def test_a_second_process_is_refused_naming_the_owner_and_touches_nothing(tmp_path):
    source = copies_of_examples(tmp_path / "many.jsonl", 2)  # 16 traces, 12 of them reach the teacher
    with ScriptedTeacher(sensible, latency=0.25) as teacher:
        command = [
            *DRP,
            "run",
            source,
            "--policy",
            "skill-aware",
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            "m",
            "--run-id",
            "owned",
            "--concurrency",
            "1",
            "--quiet",
        ]
        owner = subprocess.Popen(
            list(map(str, command)), env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            # As soon as the owner holds the lock (it may still be creating the run), then while it prunes.
            _wait_for(lambda: f'"pid": {owner.pid}' in _lock_holder("owned"), what="the owner's lock")
            # The challengers run in-process: the test's own process is the second one.
            refusals = [drp(*command[3:], "--overwrite")]
            _wait_for(lambda: _done("owned") >= 1 or owner.poll() is not None, what="the owner to prune")
            assert owner.poll() is None, owner.communicate()
            for extra in ((), ("--resume",), ("--overwrite",), ("--resume", "--workers", "2")):
                refusals.append(drp(*command[3:], *extra))
            assert owner.poll() is None, "the owner finished before the test could challenge it"
            teacher.latency = 0  # it only kept the owner busy while it was challenged
        finally:
            out, err = owner.communicate(timeout=300)
    for refused in refusals:
        assert refused.exit_code == 2, refused.stderr
        assert one_line_error(refused.stderr), refused.stderr
        assert f"in use by process {owner.pid}" in refused.stderr and "started" in refused.stderr, refused.stderr
    assert owner.returncode == 0, err
    traces = traces_of("owned")
    accepted = sum(t["status"] == "accepted" for t in traces.values())
    assert len(traces) == 16 and accepted == 12 and all(t["status"] != "pending" for t in traces.values())
    assert len(teacher.requests) == 3 * accepted  # nobody else ran a trace: no double teacher cost
    assert len(pruned_of("owned")) == accepted
    assert db_of("owned")["runs"].get("owned")["sessions"] == 1
    # Once the owner is gone, the run is free again.
    assert drp("run", source, "--run-id", "owned", "--resume", "--quiet").exit_code == 0


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie no longer runs: only its exit status waits to be collected


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads process children from /proc (Linux)")
def test_workers_die_with_their_parent_and_a_resume_finishes_every_trace_once(tmp_path):
    source = copies_of_examples(tmp_path / "many.jsonl", 4)  # 32 traces
    with ScriptedTeacher(sensible, latency=0.2) as teacher:
        command = [
            *DRP,
            "run",
            source,
            "--policy",
            "skill-aware",
            "--teacher-url",
            teacher.url,
            "--teacher-model",
            "m",
            "--run-id",
            "orphans",
            "--workers",
            "2",
            "--concurrency",
            "2",
            "--quiet",
        ]
        parent = subprocess.Popen(
            list(map(str, command)), env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for(lambda: _done("orphans") >= 3, what="the workers to prune")
        workers = _children(parent.pid)
        assert len(workers) >= 2, workers
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        at_kill = _done("orphans")
        _wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=30, what="the workers to die")
        # No orphan goes on pruning: at most a commit that raced the kill lands, then nothing.
        requests, done = len(teacher.requests), _done("orphans")
        assert done <= at_kill + len(workers), (at_kill, done)
        time.sleep(2.0)
        assert (len(teacher.requests), _done("orphans")) == (requests, done)
        assert 0 < done < 32
        teacher.latency = 0  # it kept the killed run mid-way; the resume, in-process, need not wait
        resumed = drp_within(300, *command[3:], "--resume")
        assert resumed.exit_code == 0, resumed.output
    db = db_of("orphans")
    rows = list(db.query("select id, line, status from traces"))
    assert len(rows) == 32 and len({r["line"] for r in rows}) == 32
    assert all(r["status"] in ("accepted", "rejected") for r in rows)
    per_trace = list(db.query("select trace_id, count(*) n from calls where node = 'prepare' group by trace_id"))
    assert len(per_trace) == 32 and all(r["n"] == 1 for r in per_trace)
    assert len(pruned_of("orphans")) == sum(r["status"] == "accepted" for r in rows)


def test_the_lock_is_free_after_a_refusal_a_failure_and_a_kill(hermetic_runs):
    """The kernel drops the lock with its owner: no stale lock after a SIGKILL, nothing to clean up."""
    assert drp("run", EXAMPLES, "--policy", "skill-aware", "--run-id", "free", "--quiet").exit_code == 2  # no teacher
    sleeper = subprocess.Popen(
        [
            *DRP[:1],
            "-c",
            "import sys, time; from drp.paths import runs_dir; from drp.run_lock import lock_run; "
            "from drp.run_place import RunPlace; "
            "lock = lock_run(RunPlace.under(runs_dir(), 'free')); print('locked', flush=True); time.sleep(600)",
        ],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sleeper.stdout.readline().strip() == "locked"
    held = drp("run", EXAMPLES, "--policy", "rules", "--run-id", "free", "--quiet")
    assert held.exit_code == 2 and f"process {sleeper.pid}" in held.output
    sleeper.send_signal(signal.SIGKILL)
    sleeper.wait()
    assert drp("run", EXAMPLES, "--policy", "rules", "--run-id", "free", "--quiet").exit_code == 0
    assert run_dir("free").is_dir()


def test_identical_runs_started_together_make_one_run(tmp_path):
    """Three identical `drp run` commands at the same instant: one owns the run, the others are refused, and
    every trace is pruned once (no 'database is locked', no doubled teacher cost)."""
    source = copies_of_examples(tmp_path / "many.jsonl", 2)
    with ScriptedTeacher(sensible, latency=0.05) as teacher:
        command = list(
            map(
                str,
                [
                    *DRP,
                    "run",
                    source,
                    "--policy",
                    "skill-aware",
                    "--teacher-url",
                    teacher.url,
                    "--teacher-model",
                    "m",
                    "--run-id",
                    "twins",
                    "--concurrency",
                    "2",
                    "--quiet",
                ],
            )
        )
        processes = [
            subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        finished = [(process.wait(timeout=300), process.stderr.read()) for process in processes]
    assert sorted(code for code, _ in finished) == [0, 2, 2], finished
    for code, err in finished:
        if code == 2:
            assert one_line_error(err) and ("in use by process" in err or "already exists" in err), err
    traces = traces_of("twins")
    accepted = sum(t["status"] == "accepted" for t in traces.values())
    assert len(traces) == 16 and all(t["status"] != "pending" for t in traces.values())
    assert len(teacher.requests) == 3 * accepted
    assert db_of("twins")["runs"].get("twins")["sessions"] == 1
