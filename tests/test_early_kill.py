"""A kill or a Ctrl-C at any instant of `drp run` leaves either no run or a resumable one, and every reading
command on whatever is left answers in one line, never with a traceback or a made-up empty report."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest
from helpers import DRP, EXAMPLES, copies_of_examples, drp, drp_process, one_line_error

from drp.paths import run_dir, work_dir
from drp.run_folders import staging_prefix
from drp.store import open_run
from drp.testing.scripted_teacher import ScriptedTeacher
from drp.testing.skill_aware_responder import sensible

READERS = (
    ("stats", "{run}"),
    ("stats", "{run}", "--json"),
    ("logs", "list", "{run}"),
    ("logs", "show", "{run}", "demo-001-0"),
    ("diff", "{run}", "demo-001-0"),
    ("report", "{run}", "--out", "{tmp}/report.html"),
    ("export", "{run}", "--out", "{tmp}/sft"),
)


def _read_everything(run: str, tmp) -> dict[str, int]:
    """Every reading command on `run`, in process: a traceback fails the test (CliRunner re-raises it)."""
    codes = {}
    for args in READERS:
        result = drp(*(arg.format(run=run, tmp=tmp) for arg in args))
        assert result.exit_code in (0, 2), (args, result.output)
        if result.exit_code == 2:
            assert one_line_error(result.output), (args, result.output)
        codes[" ".join(args[:2])] = result.exit_code
    return codes


def _timeline(command: list[str], run_id: str, timeout: float = 120) -> dict[str, float]:
    """When, after the start, the run's lock is taken, its folder appears, and it ends (one full run)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: dict[str, float] = {}
    while process.poll() is None and time.perf_counter() - started < timeout:
        now = time.perf_counter() - started
        if "locked" not in seen and (work_dir() / f"{run_id}.lock").exists():
            seen["locked"] = now
        if "folder" not in seen and (run_dir(run_id) / "drp.db").exists():
            seen["folder"] = now
        time.sleep(0.01)
    seen["end"] = time.perf_counter() - started
    assert process.wait() == 0
    return seen


def _check_resumed(run_id: str, lines: int) -> None:
    store = open_run(run_dir(run_id))
    rows = store.traces(("id", "line", "status"))
    assert len(rows) == lines and len({r["line"] for r in rows}) == lines, run_id
    assert all(r["status"] in ("accepted", "rejected") for r in rows), run_id
    calls = store.db.execute(
        "select trace_id, node, count(*) from calls where node = 'prepare' group by trace_id"
    ).fetchall()
    assert len(calls) == lines and all(n == 1 for _, _, n in calls), run_id
    assert not store.db.execute("select 1 from calls group by trace_id, seq having count(*) > 1").fetchall(), run_id
    accepted = sum(r["status"] == "accepted" for r in rows)
    assert len((run_dir(run_id) / "pruned.jsonl").read_text().splitlines()) == accepted, run_id
    store.close()


@pytest.mark.slow  # about two dozen real processes, each started and killed: minutes
def test_a_kill_at_any_instant_leaves_no_run_or_a_resumable_one(tmp_path):
    source = copies_of_examples(tmp_path / "traces.jsonl", 3)  # 24 traces
    with ScriptedTeacher(sensible, latency=0.05) as teacher:

        def command(run_id: str) -> list[str]:
            return list(
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
                        run_id,
                        "--concurrency",
                        "2",
                        "--quiet",
                    ],
                )
            )

        timeline = _timeline(command("calibrate"), "calibrate")
        made = timeline.get("folder", timeline["end"])
        # Dense over the start-up (interpreter, lock, tokenizer, database, ingest, config), then over the run.
        delays = [made * k / 16 for k in range(1, 17)] + [made + (timeline["end"] - made) * k / 9 for k in range(1, 9)]
        outcomes = []
        for number, delay in enumerate(delays):
            run_id = f"k{number:02d}"
            process = subprocess.Popen(
                command(run_id), env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(delay)
            process.send_signal(signal.SIGINT if number % 5 == 4 else signal.SIGKILL)  # a Ctrl-C now and then
            process.wait()
            # In this process, each run gets its own teacher server: langchain-openai keeps one HTTP client per
            # URL for the whole process, tied to the event loop of the first run that used it.
            with ScriptedTeacher(sensible, latency=0.02) as fresh:
                if not run_dir(run_id).exists():
                    assert set(_read_everything(run_id, tmp_path / run_id).values()) == {2}
                    again = drp(
                        "run",
                        source,
                        "--policy",
                        "skill-aware",
                        "--teacher-url",
                        fresh.url,
                        "--teacher-model",
                        "m",
                        "--run-id",
                        run_id,
                        "--quiet",
                    )  # nothing left in the way
                    assert again.exit_code == 0, (delay, again.output)
                    outcomes.append("none")
                else:
                    codes = _read_everything(run_id, tmp_path / run_id)
                    assert codes["stats {run}"] == 0, delay  # a run that exists is a complete one
                    stats = json.loads(drp("stats", run_id, "--json").output)
                    assert stats["traces"] == 24, (delay, stats)  # every input line already has its row
                    resumed = drp("run", source, "--run-id", run_id, "--resume", "--teacher-url", fresh.url, "--quiet")
                    assert resumed.exit_code == 0, (delay, resumed.output)
                    outcomes.append("resumed")
            _check_resumed(run_id, 24)
            assert not list(work_dir().glob(f"{staging_prefix(run_id)}*")), "a finished run leaves nothing being built"
    print(
        f"start-up {made:.2f}s, whole run {timeline['end']:.2f}s; after {len(delays)} kills: "
        f"{outcomes.count('none')} left no run, {outcomes.count('resumed')} a run that resumed"
    )
    # The delays did reach both sides of the moment the run appears.
    assert "none" in outcomes and "resumed" in outcomes, outcomes


def test_an_unloadable_tokenizer_leaves_no_run(hermetic_runs, tmp_path):
    result = drp_process(
        "run", EXAMPLES, "--policy", "rules", "--run-id", "tok", "--tokenizer", tmp_path / "nonexistent"
    )
    assert result.returncode == 2 and one_line_error(result.stderr), result.stderr
    assert "tokenizer" in result.stderr
    assert not run_dir("tok").exists() and not list(work_dir().glob(f"{staging_prefix('tok')}*"))
    assert drp("run", EXAMPLES, "--policy", "rules", "--run-id", "tok", "--resume").exit_code == 2


def _leftover_empty_db(folder):
    (folder / "drp.db").write_bytes(b"")


def _leftover_half_migrated(folder):
    conn = sqlite3.connect(folder / "drp.db")
    conn.execute("create table runs (id text primary key, policy text, config text)")
    conn.commit()
    conn.close()


def _leftover_without_row(folder):
    open_run(folder, write=True).close()  # migrated, no run row, no config.json: the old kill window


def _leftover_without_config(folder):
    store = open_run(folder, write=True)
    store.save_run(folder.name, {"policy": "rules"})
    store.close()


def _leftover_garbage(folder):
    (folder / "drp.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 50)  # a header and nothing after it


@pytest.mark.parametrize(
    "make",
    [_leftover_empty_db, _leftover_half_migrated, _leftover_without_row, _leftover_without_config, _leftover_garbage],
)
def test_reading_or_resuming_a_leftover_is_a_one_line_error(hermetic_runs, tmp_path, make):
    folder = hermetic_runs / "left"
    folder.mkdir(parents=True)
    make(folder)
    for run in ("left", str(folder)):
        codes = _read_everything(run, tmp_path)
        if make is _leftover_without_config:  # it has a row: readable, with its 0 traces stated as they are
            assert codes["stats {run}"] == 0
        else:
            assert set(codes.values()) == {2}, codes
    resumed = drp("run", EXAMPLES, "--run-id", "left", "--resume")
    assert resumed.exit_code == 2 and one_line_error(resumed.output), resumed.output
    assert "--overwrite" in resumed.output or "not a drp run" in resumed.output
    # A leftover drp recognises is replaced by --overwrite; one it cannot read is left alone.
    replaced = drp("run", EXAMPLES, "--policy", "rules", "--run-id", "left", "--overwrite", "--quiet")
    if make is _leftover_garbage:
        assert replaced.exit_code == 2 and "not a drp run" in replaced.output
    else:
        assert replaced.exit_code == 0, replaced.output
        assert json.loads(drp("stats", "left", "--json").output)["traces"] == 8


def test_a_staged_run_named_by_path_is_not_read_as_a_run(hermetic_runs, tmp_path):
    """What a kill during creation leaves is in the runs folder's work corner; pointed at, it says so."""
    staged = work_dir() / f"{staging_prefix('x')}abc"
    staged.mkdir(parents=True)
    store = open_run(staged, write=True)
    store.ingest([])
    store.close()
    assert set(_read_everything(str(staged), tmp_path).values()) == {2}


def test_a_run_clears_only_its_own_leftovers(hermetic_runs):
    """Run ids may hold `.` and `-`, so `a.new-q` is a run id: what it is building is never `a`'s leftover."""
    root = work_dir()
    root.mkdir(parents=True)
    others = [
        root / f"{staging_prefix('a.new-q')}k3j2h1g0",
        root / "a.new-q.new-k3j2h1g0",  # now and before
        root / f"{staging_prefix('a.old-x', 'old')}zz11yy22",
        root / "a.new-q.old-abcdefgh",
        root / f"{staging_prefix('a-b')}abcdefgh",
    ]
    mine = [
        root / f"{staging_prefix('a')}k3j2h1g0",
        root / f"{staging_prefix('a', 'old')}k3j2h1g0",
        root / "a.new-k3j2h1g0",
        root / "a.old-k3j2h1g0",
    ]  # a kill's leftovers, the earlier naming too
    for folder in others + mine:
        folder.mkdir()
        (folder / "drp.db").write_text("")
    assert drp("run", EXAMPLES, "--policy", "rules", "--run-id", "a", "--quiet").exit_code == 0
    assert all(folder.is_dir() for folder in others), [f.name for f in root.iterdir()]
    assert not any(folder.exists() for folder in mine)
