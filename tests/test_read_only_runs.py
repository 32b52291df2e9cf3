"""A finished run on read-only storage: `stats`, `logs`, `diff`, `report` and `export` all work, and read
what the run holds, a write-ahead log left by a killed run included.

Three ways to make a run read-only: a real read-only bind mount (root, in a private mount namespace), a
folder another user cannot write (a non-root user), and chmod as root (where it stops nothing, so the check
is that reading still writes nothing into the run's files)."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from helpers import drp

TRACE = "demo-001"
MARK = "written only to the write-ahead log"
COMMANDS = {
    "stats": ["stats", "ro"],
    "stats --json": ["stats", "ro", "--json"],
    "logs list": ["logs", "list", "ro"],
    "logs show": ["logs", "show", "ro", TRACE, "--json"],
    "diff": ["diff", "ro", TRACE],
    "report": ["report", "ro"],
    "report --out": ["report", "ro", "--out", "{out}/r.html"],
    "export": ["export", "ro", "--out", "{out}/sft"],
}


def _finished_run(root: Path, leftover: str, monkeypatch, example_run) -> None:
    """A finished run `ro` under `root`; `leftover`: clean, or a killed writer's -wal (with or without -shm)."""
    monkeypatch.setenv("DRP_RUNS_DIR", str(root))
    example_run("ro", runs=root)
    if leftover == "clean":
        return
    folder = root / "ro"
    copy = root.parent / "copy"
    conn = sqlite3.connect(folder / "drp.db")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    with conn:
        conn.execute("update traces set reason = ? where id = ?", [MARK, TRACE])
    shutil.copytree(folder, copy)  # while the writer still has the change in its log only: a kill's leftovers
    conn.close()
    shutil.rmtree(folder)
    copy.rename(folder)
    assert (folder / "drp.db-wal").stat().st_size > 0
    if leftover == "wal-only":
        (folder / "drp.db-shm").unlink()


# Runs every command of COMMANDS in one interpreter (inside the read-only namespace or as the other user): each
# through the CLI in-process, its output, errors (a traceback included) and exit status written under `out`.
_READER = """
import json, sys, traceback
from pathlib import Path
from typer.testing import CliRunner
from drp.cli import app
out = Path(sys.argv[1])
for number, args in enumerate(json.loads(sys.argv[2])):
    result = CliRunner().invoke(app, args)
    errors = result.stderr
    if result.exc_info and not isinstance(result.exception, SystemExit):
        errors += "".join(traceback.format_exception(*result.exc_info))
    (out / f"{number}.out").write_text(result.stdout)
    (out / f"{number}.err").write_text(errors)
    (out / f"{number}.rc").write_text(str(result.exit_code))
"""


def _script(runs: Path, out: Path) -> str:
    commands = [[a.format(out=out) for a in args] for args in COMMANDS.values()]
    argv = [sys.executable, "-c", _READER, str(out), json.dumps(commands)]
    return f"cd {shlex.quote(str(out))}\nexport DRP_RUNS_DIR={shlex.quote(str(runs))}\n{shlex.join(argv)}\n"


def _results(out: Path) -> dict[str, tuple[int, str, str]]:
    return {
        name: (int((out / f"{n}.rc").read_text()), (out / f"{n}.out").read_text(), (out / f"{n}.err").read_text())
        for n, name in enumerate(COMMANDS)
    }


def _check(results: dict, out: Path, leftover: str) -> None:
    for name, (code, _stdout, stderr) in results.items():
        assert code == 0, (name, stderr[-2000:])
    assert json.loads(results["stats --json"][1])["traces"] == 8
    shown = json.loads(results["logs show"][1])
    assert (shown["trace"]["reason"] == MARK) == (leftover != "clean")  # the log's content is read, not lost
    assert (out / "r.html").is_file() and (out / "sft" / "train.jsonl").is_file()
    assert (out / "ro-report.html").is_file()  # the run's folder cannot take the default report


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount --bind / /mnt && mount -o remount,bind,ro /mnt"], capture_output=True
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount(), reason="needs root and mount namespaces (unshare -m) for a read-only mount")
@pytest.mark.parametrize("leftover", ["clean", "wal-and-shm", "wal-only"])
def test_reading_a_run_on_a_read_only_mount(tmp_path, monkeypatch, leftover, example_run):
    source, mount, out = tmp_path / "runs", tmp_path / "mnt", tmp_path / "out"
    _finished_run(source, leftover, monkeypatch, example_run)
    mount.mkdir()
    out.mkdir()
    before = _digests(source / "ro")
    script = tmp_path / "read.sh"
    script.write_text(_script(mount, out))
    mounted = subprocess.run(
        [
            "unshare",
            "-m",
            "sh",
            "-c",
            f"mount --bind {source} {mount} && "
            f"mount -o remount,bind,ro {mount} && touch {mount}/probe 2>/dev/null; "
            f"test ! -e {mount}/probe && sh {script}",
        ],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=600,
    )
    assert mounted.returncode == 0, mounted.stderr
    _check(_results(out), out, leftover)
    assert _digests(source / "ro") == before


def _unprivileged_python_runs() -> bool:
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return False
    probe = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "sh",
            "-c",
            f"{shlex.quote(sys.executable)} -c 'import drp.cli, datasets'",
        ],
        capture_output=True,
        env={**os.environ, "HOME": "/tmp"},
    )
    return probe.returncode == 0


@pytest.mark.skipif(
    not _unprivileged_python_runs(), reason="needs root, setpriv, and an interpreter and checkout another user can read"
)
@pytest.mark.parametrize("leftover", ["clean", "wal-only"])
def test_reading_a_run_another_user_cannot_write(monkeypatch, leftover, example_run):
    base = Path(tempfile.mkdtemp(prefix="drp-ro-"))
    try:
        base.chmod(0o755)
        source, out = base / "runs", base / "out"
        _finished_run(source, leftover, monkeypatch, example_run)
        out.mkdir(mode=0o777)
        out.chmod(0o777)
        subprocess.run(["chmod", "-R", "a-w", str(source)], check=True)
        before = _digests(source / "ro")
        script = base / "read.sh"
        script.write_text(_script(source, out))
        script.chmod(0o755)
        env = {**os.environ, "HOME": str(out)}
        done = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", str(script)],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        _check(_results(out), out, leftover)
        assert _digests(source / "ro") == before
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(base)])
        shutil.rmtree(base, ignore_errors=True)


def test_reading_a_chmodded_run_changes_none_of_its_files(tmp_path, example_run):
    """As root chmod stops no write, so what is checked is that reading writes nothing into the run's files."""
    folder = example_run("ro")
    subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)
    try:
        before = {name: digest for name, digest in _digests(folder).items() if name != "report.html"}
        for name, args in COMMANDS.items():
            result = drp(*(a.format(out=tmp_path) for a in args))
            assert result.exit_code == 0, (name, result.output)
        after = _digests(folder)
        assert {name: after[name] for name in before} == before
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(folder)])
