"""The disk refusing a write (file-size limit: EFBIG; full: ENOSPC; SQLite's `database or disk is full`) ends
`run`, `export` and `report` with one line saying what to do, never a traceback; nothing finished is lost and
no half-written output is left. Real processes under a real RLIMIT_FSIZE (`ulimit -f`)."""

from __future__ import annotations

import errno
import resource
import sqlite3
import subprocess

import pytest
from helpers import DRP, TORCH_WORKER, copies_of_examples, drp, one_line_error, traces_of

from drp.disk_errors import disk_error
from drp.paths import run_dir


def _limited(limit: int, *args) -> subprocess.CompletedProcess:
    def set_limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([*DRP, *map(str, args)], capture_output=True, text=True, timeout=300, preexec_fn=set_limit)


def _refused(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 2, result.stderr
    assert one_line_error(result.stderr) and "ulimit -f" in result.stderr, result.stderr


@pytest.mark.parametrize("limit,workers", [(100_000, 1), (1_500_000, 1), (1_500_000, 2)])  # before the run
def test_run_over_the_file_size_limit_is_one_line_and_resumes(tmp_path, limit, workers):  # exists / while it runs
    source = copies_of_examples(tmp_path / "in.jsonl", 20)
    _refused(_limited(limit, "run", source, "--policy", "rules", "--run-id", "big", "--quiet", "--workers", workers))
    again = ("--resume",) if run_dir("big").exists() else ("--policy", "rules")
    result = drp("run", source, "--run-id", "big", "--quiet", *again)
    assert result.exit_code == 0, result.output
    rows = traces_of("big")
    assert len(rows) == 160 and {row["status"] for row in rows.values()} == {"accepted", "rejected"}


@TORCH_WORKER  # the export writes a Hugging Face dataset
def test_export_and_report_over_the_file_size_limit_leave_nothing_half_written(tmp_path):
    source = copies_of_examples(tmp_path / "in.jsonl", 20)
    assert drp("run", source, "--policy", "rules", "--run-id", "done", "--quiet").exit_code == 0
    before = sorted(p.name for p in tmp_path.iterdir())
    _refused(_limited(50_000, "export", "done", "--out", tmp_path / "ds"))
    _refused(_limited(50_000, "report", "done", "--out", tmp_path / "report.html"))
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no partial dataset or page beside them
    assert drp("export", "done", "--out", tmp_path / "ds").exit_code == 0


def test_a_full_disk_is_named_for_files_and_for_sqlite(tmp_path):
    full = disk_error(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x")))
    assert full is not None and "no space left" in str(full) and str(tmp_path / "x") in str(full)
    conn = sqlite3.connect(tmp_path / "tiny.db")
    conn.execute("pragma max_page_count = 2")
    with pytest.raises(sqlite3.OperationalError) as caught:
        conn.execute("create table t (x)")
        conn.executemany("insert into t values (?)", [("x" * 1000,)] * 100)
        conn.commit()
    assert "disk is full" in str(disk_error(caught.value))
    assert disk_error(OSError(errno.ENOENT, "gone")) is None and disk_error(ValueError()) is None


def test_a_write_refused_while_traces_run_stops_the_run_and_loses_nothing(tmp_path, monkeypatch):
    """The finished traces are written every WRITE_EVERY seconds while others run: when one such write is refused,
    the run stops there in one line, instead of running on and reporting traces it never stored."""
    from drp import run_traces
    from drp.store import RunStore

    source = copies_of_examples(tmp_path / "in.jsonl", 8)
    monkeypatch.setattr(run_traces, "WRITE_EVERY", 0.0)
    save_results, refused = RunStore.save_results, []

    def refuse_the_first_write(store, batch, policy_hash):
        if batch and not refused:
            refused.append(len(batch))
            raise OSError(errno.EFBIG, "File too large", str(run_dir("big") / "drp.db"))
        return save_results(store, batch, policy_hash)

    monkeypatch.setattr(RunStore, "save_results", refuse_the_first_write)
    result = drp("run", source, "--policy", "rules", "--run-id", "big", "--quiet")
    assert refused and result.exit_code == 2, result.output
    assert one_line_error(result.output) and "ulimit -f" in result.output, result.output
    monkeypatch.setattr(RunStore, "save_results", save_results)
    assert drp("run", source, "--run-id", "big", "--resume", "--quiet").exit_code == 0
    rows = traces_of("big")
    assert len(rows) == 64 and {row["status"] for row in rows.values()} == {"accepted", "rejected"}
